# Post-hoc LA of mmdet's stock LVIS v1 Mask R-CNN R101 (repeat-factor
# sampling, 1x); as the R50 config.
_base_ = './mask-rcnn_r50_fpn_la-posthoc_sample1e-3-ms-1x_lvis-v1.py'

load_from = ('https://download.openmmlab.com/mmdetection/v2.0/lvis/'
             'mask_rcnn_r101_fpn_sample1e-3_mstrain_1x_lvis_v1/'
             'mask_rcnn_r101_fpn_sample1e-3_mstrain_1x_lvis_v1-ec55ce32.pth')
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
