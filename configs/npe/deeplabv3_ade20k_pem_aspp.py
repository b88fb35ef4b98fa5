# NPE-LA on ADE20K with DeepLabV3 R50-D8 (NPE paper, Table 7): a PEM with the
# ASPP head's structure (no BN) trained on top of the frozen stock model. The
# one PEM of its rows: scale_factor (alpha) only acts at inference, so this
# config trains it and tests at alpha = 1, deeplabv3_ade20k_pem_aspp_s0.1.py
# trains it and tests at alpha = 0.1, and tools/test.py --cfg-options
# model.scale_factor=A tests either checkpoint at any other alpha.
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config; offline, pass a local path with
# --cfg-options load_from=/path/to/checkpoint.pth
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r50-d8_512x512_80k_ade20k/deeplabv3_r50-d8_512x512_80k_ade20k_20200614_185028-0bb3f844.pth'  # noqa

model = dict(
    type='NPEEncoderDecoder',
    # load_from provides every frozen weight: no ImageNet init download.
    pretrained=None,
    scale_factor=1.0,
    pem_head=dict(
        type='PEMASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        num_classes=150))

# Only the PEM trains (paper Sec. 3.2, Table 2): SGD lr 1e-2, wd 5e-4,
# 2 500 iterations, x0.1 at 1 250.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[1250], gamma=0.1)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2500, val_interval=2500)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2500))
# The paper's total batch of 16 for every PEM. batch_size is per process, so
# this is 1 GPU x 16; on 4 GPUs pass --cfg-options
# train_dataloader.batch_size=4, on 8 GPUs =2 (the hook refuses any launch
# whose total is not 16; the stock config's 4 GPUs x 4 is 16 too).
train_dataloader = dict(batch_size=16)
custom_hooks = [
    dict(type='FrozenBackboneHook'),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
