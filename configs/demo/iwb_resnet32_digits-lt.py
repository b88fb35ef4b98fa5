# IWB stage 2 on the demo's CE model: encoder frozen, the classifier
# re-initialised after the CE checkpoint is loaded (as for cRT; the IWB paper
# fine-tunes the loaded one instead: reinit_modules=[] in StageTwoHook below)
# and trained for 10 epochs with class-balanced CE (beta 0.9999) plus the KL
# term pulling softmax(|W|) towards softmax(lambda * NC * HC), lambda 0.15;
# class counts from the training set (ClassCountsHook). Optimizer: cosine to
# 0, SGD momentum 0.9, weight decay 2e-4 (the CE run's), lr 0.05: ten times
# the paper's CIFAR stage-2 lr, as 10 epochs are only 110 steps here (1 700 on
# CIFAR-100-LT); it also trains the re-initialised head (its loss levels off).
# Train ce_resnet32_digits-lt.py first (`make demo` writes the load_from below,
# or pass --cfg-options load_from=PATH).
_base_ = './ce_resnet32_digits-lt.py'
load_from = 'work_dirs/demo/cls_ce/epoch_100.pth'
model = dict(
    head=dict(
        type='IWBClsHead',
        class_counts=None,
        iwb_lambda=0.15,
        kl_direction='forward',
        loss=dict(_delete_=True, type='ClassBalancedLoss', beta=0.9999)))
optim_wrapper = dict(optimizer=dict(lr=0.05))
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
