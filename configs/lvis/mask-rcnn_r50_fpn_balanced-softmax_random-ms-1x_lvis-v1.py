# Balanced Softmax (Ren et al. 2020, Eq. 4) on mmdet's LVIS v1 Mask R-CNN,
# for the C + 1 softmax RoI classifier: the instance counts enter the
# foreground-conditional part only, p(background) is trained as stock; plain
# softmax at test time (fc_cls keeps its 1204 outputs). Random sampling, as
# for Balanced Sigmoid.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV1Dataset',
        data_root='data/lvis_v1/',
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.train_pipeline}}))
model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True, type='BalancedSoftmaxRoILoss',
                kind='instances'))))
custom_hooks = [dict(type='ClassCountsHook')]
