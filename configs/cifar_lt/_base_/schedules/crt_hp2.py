# cRT stage 2 (Kang et al., "Decoupling representation and classifier for
# long-tailed recognition", ICLR 2020) on the CE run of HP-2: the classifier
# is re-initialised after the CE checkpoint (load_from) is loaded and
# re-trained for 10 epochs with class-balanced sampling, backbone and neck
# frozen (BN in eval mode). Optimizer as the authors' cRT configs: SGD
# momentum 0.9, weight decay 5e-4, cosine decay to 0 over the 10 epochs, lr
# 0.2 at batch 512 scaled linearly to HP-2's batch of 64 -> 0.025
# (auto_scale_lr below, which the leaf configs' train_dataloader.batch_size
# reads). The leaf config sets the ClassBalancedSampler.
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.025, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=10, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
auto_scale_lr = dict(base_batch_size=64)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10))
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone', 'neck']),
    # Re-initialises the head after load_from, not when resuming stage 2;
    # refuses to start without a stage-1 checkpoint.
    dict(type='StageTwoHook', reinit_modules=['head']),
    # LongTailAccuracy's Many / Medium / Few from the training set's counts.
    dict(type='ClassCountsHook'),
]
randomness = dict(seed=0, deterministic=False)
