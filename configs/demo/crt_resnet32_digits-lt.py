# cRT (stage 2) on the demo's CE model: the classifier is re-initialised
# after the CE checkpoint is loaded and re-trained for 10 epochs with
# class-balanced sampling, backbone frozen (BN in eval mode). Train
# ce_resnet32_digits-lt.py first (`make demo` writes the load_from below,
# or pass --cfg-options load_from=PATH). Optimizer as Kang et al.'s cRT
# (SGD momentum 0.9, weight decay 5e-4, cosine to 0) but lr 0.1, the CE
# demo's: their 0.2 at batch 512 scaled to 32 (0.0125) leaves the fresh
# classifier underfit here, where 10 epochs are only 110 steps (1 000 to
# 2 000 in a CIFAR-LT stage 2).
_base_ = './ce_resnet32_digits-lt.py'
load_from = 'work_dirs/demo/cls_ce/epoch_100.pth'
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassBalancedSampler'))
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=5e-4))
param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    by_epoch=True,
    T_max=10,
    eta_min=0.)
train_cfg = dict(max_epochs=10, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone', 'neck']),
    dict(type='StageTwoHook', reinit_modules=['head']),
    dict(type='ClassCountsHook'),
]
