# NPE-LA with 16 PEMs; ResNet-32, HP-2 (paper Table 1), CIFAR10-LT rho=100.
_base_ = [
    '../_base_/models/resnet32_npe.py', '../_base_/datasets/cifar10_lt.py',
    '../_base_/schedules/hp2.py'
]
model = dict(head=dict(num_classes=10, num_pems=16, scale_factor=1.0))
train_dataloader = dict(
    batch_size=_base_.auto_scale_lr.base_batch_size,
    dataset=dict(imbalance_ratio=100))
