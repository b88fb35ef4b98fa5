# Post-hoc logit adjustment of mmdet's stock LVIS v1 Mask R-CNN R50 (repeat-
# factor sampling, 1x): the test-time foreground scores become
# (1 - p_bg) * softmax(z_fg - tau * log pi), p_bg kept. No training:
#   python tools/test.py THIS_CONFIG STOCK_CHECKPOINT
# The stock model learnt the prior of the repeated images, so pi is counted
# on the training set as the base config builds it (ClassBalancedDataset
# included). ClassCountsHook counts it at test time from train_dataloader
# (the LVIS train annotations must be there); or write it once with
#   python tools/analysis/class_counts.py THIS_CONFIG --out counts.json
# and pass --cfg-options model.roi_head.bbox_head.loss_cls.class_counts=...
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

load_from = ('https://download.openmmlab.com/mmdetection/v2.0/lvis/'
             'mask_rcnn_r50_fpn_sample1e-3_mstrain_1x_lvis_v1/'
             'mask_rcnn_r50_fpn_sample1e-3_mstrain_1x_lvis_v1-aa78ac3d.pth')
model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='PostHocLARoILoss',
                tau=1.0,
                kind='instances'))))
custom_hooks = [dict(type='ClassCountsHook')]
