# NPE-LA on mmdet's stock LVIS v1 Mask R-CNN R50 (repeat-factor sampling,
# 1x), the paper's segmentation setting (Sec. 3.2) carried over: every
# module of the stock checkpoint is frozen (FrozenBackboneHook) and only a
# linear PEM on the box head's shared-FC output trains, with the one-way
# logistic loss on foreground RoIs, for a short schedule on the same
# (repeated) training images. At test time the foreground logits are
# corrected by alpha * eta, p(background) kept. NPETwoStageDetector (a
# MaskRCNN otherwise) runs only what the PEM needs while everything else is
# frozen: no RPN loss, no box losses, no mask branch.
#
# The schedule is mmnpe's choice (no published anchor exists for detection):
# 5 000 iterations at a total batch of 16 (2 x 8 GPUs, as the base), SGD lr
# 1e-2, momentum 0.9, weight decay 5e-4, x0.1 at 3 300 and 4 200.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

load_from = ('https://download.openmmlab.com/mmdetection/v2.0/lvis/'
             'mask_rcnn_r50_fpn_sample1e-3_mstrain_1x_lvis_v1/'
             'mask_rcnn_r50_fpn_sample1e-3_mstrain_1x_lvis_v1-aa78ac3d.pth')
model = dict(
    type='NPETwoStageDetector',
    roi_head=dict(
        bbox_head=dict(
            type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)))

max_iters = 5000
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[3300, 4200],
        gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=max_iters),
    logger=dict(log_metric_by_epoch=False))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(
        type='FrozenBackboneHook',
        modules=[
            'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
            'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
            'roi_head.mask_head'
        ]),
    dict(type='TotalBatchSizeHook', total_batch_size=16)
]
