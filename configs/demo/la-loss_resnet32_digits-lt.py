# As ce_resnet32_digits-lt.py with the logit-adjusted loss
# CE(z + tau * log pi, y), tau = 1; pi = the training images per class,
# counted by ClassCountsHook when training starts. Plain logits at test.
_base_ = './ce_resnet32_digits-lt.py'
model = dict(
    head=dict(loss=dict(_delete_=True, type='LogitAdjustLoss', tau=1.0)))
