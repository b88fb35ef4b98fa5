# Logit-adjusted loss CE(z + tau * log pi, y), tau = 1 (Menon et al., ICLR
# 2021); pi = the training set's images per class, counted by ClassCountsHook
# at the start of training. Plain logits at test. Otherwise as the CE config.
_base_ = './ce_resnet50_180e_imagenet-lt.py'
model = dict(
    head=dict(loss=dict(_delete_=True, type='LogitAdjustLoss', tau=1.0)))
