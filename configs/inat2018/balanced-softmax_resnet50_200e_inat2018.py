# Balanced Softmax CE(z + log n, y) (Ren et al., NeurIPS 2020); n = the
# training set's images per class, counted by ClassCountsHook at the start of
# training. Plain logits at test. Otherwise as the CE config.
_base_ = './ce_resnet50_200e_inat2018.py'
model = dict(head=dict(loss=dict(_delete_=True, type='BalancedSoftmaxLoss')))
