# Table 3 ablation: 4 PEMs trained (OWL reaches the backbone), plain classifier
# at test; ResNet-32, HP-1 (paper Table 1), CIFAR10-LT rho=200.
_base_ = [
    '../_base_/models/resnet32_npe.py', '../_base_/datasets/cifar10_lt.py',
    '../_base_/schedules/hp1.py'
]
model = dict(head=dict(num_classes=10, num_pems=4, scale_factor=0.0))
train_dataloader = dict(
    batch_size=_base_.auto_scale_lr.base_batch_size,
    dataset=dict(imbalance_ratio=200))
