# Post-hoc logit adjustment of the demo's CE detector: at test time the
# foreground scores become (1 - p_bg) * softmax(z_fg - tau * log pi), p_bg
# kept, pi the instances per category of the training set (ClassCountsHook
# counts them from train_dataloader). No training: tools/test.py THIS_CONFIG
# CE_CHECKPOINT (the checkpoint lacks only the counts buffer).
_base_ = './faster-rcnn_r18-tiny_fpn_synthetic-lvis.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(_delete_=True, type='PostHocLARoILoss', tau=1.0))))
custom_hooks = [dict(type='ClassCountsHook')]
