# IWB stage 2 (class-balanced CE + KL on the classifier's weight norms) on
# the CE run of the same schedule and rho; ResNet-32, HP-2,
# CIFAR100-LT rho=100.
# Train ce_resnet32_hp2_cifar100-lt-r100.py first: its last checkpoint
# (in tools/train.py's default work dir) is load_from; override with
# --cfg-options load_from=PATH.
_base_ = [
    '../_base_/models/resnet32_iwb.py', '../_base_/datasets/cifar100_lt.py',
    '../_base_/schedules/iwb_hp2.py'
]
load_from = 'work_dirs/ce_resnet32_hp2_cifar100-lt-r100/epoch_120.pth'
model = dict(head=dict(num_classes=100))
train_dataloader = dict(
    batch_size=_base_.auto_scale_lr.base_batch_size,
    dataset=dict(imbalance_ratio=100))
