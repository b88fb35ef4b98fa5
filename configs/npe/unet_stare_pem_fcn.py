# NPE-LA on STARE with UNet-S5-D16 + FCN (NPE paper, Table 6): a linear PEM
# (one 1x1 conv on the feature the decode head reads) trained on top of the
# frozen stock model. The one PEM of the STARE rows: scale_factor (alpha)
# only acts at inference, so this config trains it and tests at alpha = 1,
# unet_stare_pem_fcn_s0.2.py trains it and tests at alpha = 0.2, and
# tools/test.py --cfg-options model.scale_factor=A tests either checkpoint
# at any other alpha.
_base_ = 'mmseg::unet/unet-s5-d16_fcn_4xb4-40k_stare-128x128.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config; offline, pass a local path with
# --cfg-options load_from=/path/to/checkpoint.pth
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/unet/fcn_unet_s5-d16_128x128_40k_stare/fcn_unet_s5-d16_128x128_40k_stare_20201223_191051-7d77e78b.pth'  # noqa

model = dict(
    type='NPEEncoderDecoder',
    scale_factor=1.0,
    pem_head=dict(
        type='PEMFCNHead', in_channels=64, in_index=4, num_classes=2))

# Only the PEM trains (paper Sec. 3.2, Table 2): SGD lr 1e-2, wd 5e-4,
# 600 iterations, x0.1 at 200 and 400.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[200, 400], gamma=0.1)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600, val_interval=600)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=600))
# The paper's total batch of 16 for every PEM. batch_size is per process, so
# this is 1 GPU x 16; on 4 GPUs pass --cfg-options
# train_dataloader.batch_size=4, on 8 GPUs =2 (the hook refuses any launch
# whose total is not 16; the stock config's 4 GPUs x 4 is 16 too).
train_dataloader = dict(batch_size=16)
custom_hooks = [
    dict(type='FrozenBackboneHook'),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
