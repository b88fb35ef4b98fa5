# Table 3 ablation: 0 PEMs trained (OWL reaches the backbone), plain classifier
# at test; ResNet-32, HP-2 (paper Table 1), CIFAR100-LT rho=50.
_base_ = [
    '../_base_/models/resnet32_npe.py', '../_base_/datasets/cifar100_lt.py',
    '../_base_/schedules/hp2.py'
]
model = dict(head=dict(num_classes=100, num_pems=0, scale_factor=0.0))
train_dataloader = dict(
    batch_size=_base_.auto_scale_lr.base_batch_size,
    dataset=dict(imbalance_ratio=50))
