# As ce_resnet32_digits-lt.py with Balanced Softmax CE(z + log n, y); n = the
# training images per class, counted by ClassCountsHook. Plain logits at test.
_base_ = './ce_resnet32_digits-lt.py'
model = dict(head=dict(loss=dict(_delete_=True, type='BalancedSoftmaxLoss')))
