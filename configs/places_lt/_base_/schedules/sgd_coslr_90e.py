# The authors' Places-LT schedule: SGD momentum 0.9, lr 0.1 for a total
# batch of 256, weight decay 5e-4, 90 epochs of cosine decay to 0, no
# warm-up. Another total batch (GPUs x train_dataloader.batch_size) scales
# the lr linearly with tools/train.py --auto-scale-lr (auto_scale_lr below).
# Validation and a checkpoint every 10 epochs (the last two kept); the last
# checkpoint is the one reported, not the best validation epoch.
_base_ = [
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py'
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=90, end=90, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=10)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
# The training set's images per class for the count-based methods and for
# LongTailAccuracy's Many / Medium / Few, counted once.
custom_hooks = [dict(type='ClassCountsHook')]
randomness = dict(seed=0, deterministic=False)
