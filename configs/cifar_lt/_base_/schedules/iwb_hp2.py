# IWB stage 2 (Dang et al., "Inverse Weight-Balancing for Deep Long-Tailed
# Learning") on the CE run of HP-2: encoder frozen, classifier re-initialised
# (see StageTwoHook below) and trained for 10 epochs with the paper's
# CIFAR-100-LT stage-2 schedule (set by the paper for fine-tuning): batch 64,
# lr 0.005 with cosine decay to 0. The paper gives no stage-2 momentum or
# weight decay: SGD momentum 0.9 and HP-2's weight decay 1e-3 (the CE run's
# optimizer otherwise unchanged). Instance-balanced sampling: the
# class-balanced loss does the balancing.
_base_ = 'mmpretrain::_base_/default_runtime.py'
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-3))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=10, eta_min=0.)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=10)
# The batch of 64 (the leaf configs' train_dataloader.batch_size reads it).
auto_scale_lr = dict(base_batch_size=64)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10))
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone', 'neck']),
    # Re-initialises the classifier after the CE checkpoint is loaded, as
    # for cRT, so that both two-stage baselines start alike (the IWB paper
    # fine-tunes the CE classifier instead). For the paper's fine-tuning use
    # dict(type='StageTwoHook', reinit_modules=[]). Refuses to start
    # without a stage-1 checkpoint.
    dict(type='StageTwoHook', reinit_modules=['head']),
    # NC, the class-balanced weights and LongTailAccuracy's Many / Medium /
    # Few from the training set's counts.
    dict(type='ClassCountsHook'),
]
randomness = dict(seed=0, deterministic=False)
