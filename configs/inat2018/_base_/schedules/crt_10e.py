# cRT stage 2 (Kang et al., "Decoupling representation and classifier for
# long-tailed recognition", ICLR 2020) on the CE run of the same backbone:
# the classifier is re-initialised after the CE checkpoint (load_from) is
# loaded and re-trained for 10 epochs with class-balanced sampling (the leaf
# sets the ClassBalancedSampler), backbone and neck frozen (BN in eval mode).
# Optimizer as in mmnpe's CIFAR-LT cRT configs, after Kang et al.: SGD
# momentum 0.9, weight decay 5e-4, cosine decay to 0 over the 10 epochs, lr
# 0.2 at batch 512 scaled linearly to the batch of 256 -> 0.1
# (reconstructed: the linear scaling and the weight decay are not taken from
# a published iNaturalist 2018 cRT file; 5e-4, not the stage-1 1e-4).
_base_ = [
    'mmpretrain::_base_/schedules/imagenet_bs256_coslr.py',
    'mmpretrain::_base_/default_runtime.py'
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=10, end=10, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2))
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone', 'neck']),
    # Re-initialises the head after load_from, not when resuming stage 2;
    # refuses to start without a stage-1 checkpoint.
    dict(type='StageTwoHook', reinit_modules=['head']),
    # Many / Medium / Few of LongTailAccuracy from the training set.
    dict(type='ClassCountsHook'),
]
randomness = dict(seed=0, deterministic=False)
