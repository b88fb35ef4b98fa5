# The demo's NPE-LA model: the baseline segmentor frozen (FrozenBackboneHook),
# plus a linear PEM on the feature its decode head reads, trained alone with
# the one-way logistic loss (the paper's segmentation setting, Sec. 3.2).
_base_ = './fcn_unet-tiny_synthetic-lt-64x64.py'

# tools/demo.py points this at the baseline's last checkpoint.
load_from = 'work_dirs/demo/baseline/iter_400.pth'

model = dict(
    type='NPEEncoderDecoder',
    scale_factor=1.0,
    pem_head=dict(
        type='PEMFCNHead', in_channels=16, in_index=3, num_classes=6))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[100, 150], gamma=0.1)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200))
custom_hooks = [dict(type='FrozenBackboneHook')]
