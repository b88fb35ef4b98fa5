# Balanced Softmax fine-tuning of the demo's CE segmentor: its decode head
# trained further with CE(z + log n, y) while the backbone stays frozen, on
# the schedule of the demo's PEM (200 iterations). Plain logits at test.
_base_ = './fcn_unet-tiny_synthetic-lt-64x64.py'

# tools/demo.py points this at the baseline's last checkpoint.
load_from = 'work_dirs/demo/baseline/iter_400.pth'
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='BalancedSoftmaxLoss',
            class_counts='data/synthetic_lt/pixel_counts.json')),
    # Only shapes the (frozen) backbone features: dropped.
    auxiliary_head=None)

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
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone']),
    dict(type='ClassCountsHook')
]
