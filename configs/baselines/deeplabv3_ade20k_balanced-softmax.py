# Balanced Softmax fine-tuning on ADE20K: the stock DeepLabV3 R50-D8's ASPP
# head trained further with CE(z + log n, y) (n = pixels per class of the
# training annotations, reduce_zero_label honoured) while the backbone stays
# frozen -- the PEM schedule of configs/npe/deeplabv3_ade20k_pem_aspp.py
# (SGD lr 1e-2, wd 5e-4, 2 500 iterations, x0.1 at 1 250). Plain logits at
# test.
#
#   python tools/analysis/class_counts.py THIS_CONFIG \
#       --out data/ade/ADEChallengeData2016/pixel_counts.json      # once
#   python tools/train.py THIS_CONFIG
_base_ = 'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The stock checkpoint of the base config; offline, pass a local path with
# --cfg-options load_from=/path/to/checkpoint.pth
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r50-d8_512x512_80k_ade20k/deeplabv3_r50-d8_512x512_80k_ade20k_20200614_185028-0bb3f844.pth'  # noqa

model = dict(
    # load_from provides every weight: no ImageNet init download.
    pretrained=None,
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='BalancedSoftmaxLoss',
            class_counts='data/ade/ADEChallengeData2016/pixel_counts.json')),
    # The auxiliary head only shapes backbone features, which are frozen
    # here: dropped (load_from reports its checkpoint keys as unexpected).
    auxiliary_head=None)

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
# The PEM schedule's total batch of 16 (see configs/npe/): 1 GPU x 16; on 4
# GPUs pass --cfg-options train_dataloader.batch_size=4, on 8 GPUs =2.
train_dataloader = dict(batch_size=16)
custom_hooks = [
    dict(type='FrozenBackboneHook', modules=['backbone']),
    dict(type='ClassCountsHook'),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
