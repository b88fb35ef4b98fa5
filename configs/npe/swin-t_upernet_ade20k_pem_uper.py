# NPE-LA on ADE20K with Swin-T + UPerNet (NPE paper, Table 7): a PEM with the
# UPerNet head's structure (no BN) trained on top of the frozen stock model.
# The one PEM of its rows: scale_factor (alpha) only acts at inference, so
# this config trains it and tests at alpha = 1,
# swin-t_upernet_ade20k_pem_uper_s0.1.py trains it and tests at alpha = 0.1,
# and tools/test.py --cfg-options model.scale_factor=A tests either
# checkpoint at any other alpha.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'  # noqa
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config; offline, pass a local path with
# --cfg-options load_from=/path/to/checkpoint.pth
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/swin/upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K/upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_20210531_112542-e380ad3e.pth'  # noqa

model = dict(
    type='NPEEncoderDecoder',
    # load_from provides every frozen weight: no ImageNet init download.
    backbone=dict(init_cfg=None),
    scale_factor=1.0,
    pem_head=dict(
        type='PEMUPerHead',
        in_channels=[96, 192, 384, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        num_classes=150))

# Only the PEM trains (paper Sec. 3.2, Table 2): AdamW lr 6e-5, wd 1e-2, 2 500
# iterations, x0.1 at 1 250.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[1250], gamma=0.1)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2500, val_interval=2500)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2500))
# The paper's total batch of 16 for every PEM. batch_size is per process, so
# this is 1 GPU x 16; on 4 GPUs pass --cfg-options
# train_dataloader.batch_size=4, on 8 GPUs =2 (the hook refuses any launch
# whose total is not 16; the stock config's 8 GPUs x 2 is 16 too).
train_dataloader = dict(batch_size=16)
custom_hooks = [
    dict(type='FrozenBackboneHook'),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
