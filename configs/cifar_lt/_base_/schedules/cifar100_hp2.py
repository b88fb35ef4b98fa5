# HP-2, the authors' public CIFAR-100-LT schedule: batch 64, SGD momentum 0.9,
# lr 0.05, wd 1e-3, 120 epochs. The step epochs are not stated with it; x0.1
# at 96 and 108 keeps CIFAR-10's proportions (0.8 and 0.9 of the run).
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[96, 108], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=120, val_interval=120)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=120))
randomness = dict(seed=0, deterministic=False)
