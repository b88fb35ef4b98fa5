# cRT (stage 2: classifier re-initialised, re-trained with class-balanced
# sampling) on the CE run of the same schedule and rho; ResNet-32, HP-2,
# CIFAR10-LT rho=50.
# Train ce_resnet32_hp2_cifar10-lt-r50.py first: its last checkpoint
# (in tools/train.py's default work dir) is load_from; override with
# --cfg-options load_from=PATH.
_base_ = [
    '../_base_/models/resnet32_ce.py', '../_base_/datasets/cifar10_lt.py',
    '../_base_/schedules/crt_hp2.py'
]
load_from = 'work_dirs/ce_resnet32_hp2_cifar10-lt-r50/epoch_120.pth'
model = dict(head=dict(num_classes=10))
train_dataloader = dict(
    batch_size=_base_.auto_scale_lr.base_batch_size,
    sampler=dict(_delete_=True, type='ClassBalancedSampler'),
    dataset=dict(imbalance_ratio=50))
