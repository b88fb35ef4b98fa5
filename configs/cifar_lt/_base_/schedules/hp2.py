# HP-2 of the NPE paper (Table 1), for CIFAR-10-LT and CIFAR-100-LT alike:
# SGD momentum 0.9, lr 0.05, batch 64 (auto_scale_lr below, which the leaf
# configs' train_dataloader.batch_size reads), weight decay 1e-3, 120 epochs,
# x0.1 at epochs 100 and 110, no warm-up. The last checkpoint is the one
# evaluated.
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[100, 110], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=120, val_interval=120)
# The batch the lr is set for (one process): mmengine's key for it, which
# scales the lr only when auto_scale_lr.enable=True.
auto_scale_lr = dict(base_batch_size=64)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=120))
# The training set's images per class: LongTailAccuracy's Many / Medium / Few
# groups (before validation and testing) and any count-using head.
custom_hooks = [dict(type='ClassCountsHook')]
randomness = dict(seed=0, deterministic=False)
