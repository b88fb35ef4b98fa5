# HP-2, the authors' public CIFAR-10-LT schedule: batch 128, SGD momentum 0.9,
# lr 0.1, wd 2e-4, 200 epochs, x0.1 at 160 and 180; the last checkpoint is
# the one evaluated (no best-epoch selection).
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[160, 180], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=200)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=200))
randomness = dict(seed=0, deterministic=False)
