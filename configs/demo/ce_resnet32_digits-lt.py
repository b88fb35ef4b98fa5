# The classification demo's baseline: option-A ResNet-32 trained with CE on
# DigitsLT (scikit-learn's real 8x8 digits, long-tailed with the CIFAR-LT
# profile, rho = 50 on the training split; balanced held-out test split,
# which needs no rho).
_base_ = [
    '../cifar_lt/_base_/models/resnet32_ce.py',
    'mmpretrain::_base_/default_runtime.py'
]
data_preprocessor = dict(
    num_classes=10, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=8, padding=1),
    dict(type='PackInputs')
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='DigitsLT',
        split='train',
        imbalance_ratio=50,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=250,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DigitsLT', split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='LongTailAccuracy')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=2e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[80, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=100))
# The training set's images per class: LongTailAccuracy's Many / Medium / Few
# groups (before validation and testing) and any count-using head.
custom_hooks = [dict(type='ClassCountsHook')]
randomness = dict(seed=0, deterministic=False)
