# IWB stage 2 (Dang et al., "Inverse Weight-Balancing for Deep Long-Tailed
# Learning", AAAI 2024) on the CE run of the same backbone: encoder frozen,
# the loaded CE classifier fine-tuned for 10 epochs with the paper's
# iNaturalist 2018 stage-2 schedule: lr 0.0002 at batch 512 with cosine decay
# to 0, here scaled linearly to the batch of 256 -> 0.0001; lambda = 0.01 (the
# leaf's head). The paper gives no stage-2 momentum or weight decay: SGD
# momentum 0.9 and the stage-1 weight decay 1e-4 (reconstructed).
# Instance-balanced sampling: the class-balanced loss does the balancing.
_base_ = [
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py'
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.0001, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=10, end=10, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone', 'neck']),
    # Fine-tunes the loaded classifier, as the paper's stage 2 (its learning
    # rates are fine-tuning ones: mmnpe's CIFAR-LT IWB configs re-initialise
    # it instead). Refuses to start without a stage-1 checkpoint.
    dict(type='StageTwoHook', reinit_modules=[]),
    # NC, the class-balanced weights and Many / Medium / Few from the
    # training set's counts.
    dict(type='ClassCountsHook'),
]
randomness = dict(seed=0, deterministic=False)
