# Balanced Softmax fine-tuning on STARE: the stock UNet-S5-D16 + FCN's decode
# head trained further with CE(z + log n, y) (n = pixels per class of the
# training annotations) while the backbone stays frozen -- the PEM schedule of
# configs/npe/unet_stare_pem_fcn.py (SGD lr 1e-2, wd 5e-4, 600 iterations,
# x0.1 at 200 and 400). Plain logits at test.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/stare/pixel_counts.json      # once
#   python tools/train.py THIS_CONFIG
_base_ = 'mmseg::unet/unet-s5-d16_fcn_4xb4-40k_stare-128x128.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config; offline, pass a local path with
# --cfg-options load_from=/path/to/checkpoint.pth
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/unet/fcn_unet_s5-d16_128x128_40k_stare/fcn_unet_s5-d16_128x128_40k_stare_20201223_191051-7d77e78b.pth'  # noqa

model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='BalancedSoftmaxLoss',
            class_counts='data/stare/pixel_counts.json')),
    # The auxiliary head only shapes backbone features, which are frozen
    # here: dropped (load_from reports its checkpoint keys as unexpected).
    auxiliary_head=None)

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
# The PEM schedule's total batch of 16 (see configs/npe/): 1 GPU x 16; on 4
# GPUs pass --cfg-options train_dataloader.batch_size=4, on 8 GPUs =2.
train_dataloader = dict(batch_size=16)
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone']),
    dict(type='ClassCountsHook'),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
