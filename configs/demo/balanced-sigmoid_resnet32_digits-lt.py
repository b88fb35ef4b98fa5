# As ce_resnet32_digits-lt.py with one sigmoid per class trained with Balanced
# Sigmoid (k = 10 classes, n = training images, n_j = images of digit j: one
# label per image, so n = sum n_j); prediction: the top-1 plain sigmoid.
_base_ = './ce_resnet32_digits-lt.py'
model = dict(
    head=dict(
        _delete_=True,
        type='MultiLabelLinearClsHead',
        num_classes=10,
        in_channels=64,
        topk=1,
        loss=dict(type='BalancedSigmoidLoss')))
