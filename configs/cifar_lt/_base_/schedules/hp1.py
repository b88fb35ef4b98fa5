# HP-1 of the NPE paper (Table 1, after the LDAM paper), for CIFAR-10-LT and
# CIFAR-100-LT alike: SGD momentum 0.9, lr 0.1, batch 128 (auto_scale_lr
# below, which the leaf configs' train_dataloader.batch_size reads), weight
# decay 2e-4, 200 epochs, x0.1 at epochs 160 and 180, no warm-up -- as the
# authors' code. LDAM's own code differs (5 warm-up epochs, x0.01 steps);
# this file is not that schedule.
# The last checkpoint is the one evaluated (no best-epoch selection).
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[160, 180], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=200)
# The batch the lr is set for (one process): mmengine's key for it, which
# scales the lr only when auto_scale_lr.enable=True.
auto_scale_lr = dict(base_batch_size=128)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=200))
# The training set's images per class: LongTailAccuracy's Many / Medium / Few
# groups (before validation and testing) and any count-using head.
custom_hooks = [dict(type='ClassCountsHook')]
randomness = dict(seed=0, deterministic=False)
