# NPE-LA trained jointly from the start (the paper's classification setting,
# Sec. 3.1, carried over): mmdet's LVIS v1 Mask R-CNN R50 with a linear PEM
# on the box head's shared-FC output; the PEM's one-way logistic loss on
# foreground RoIs is added to the stock losses and its gradient reaches the
# backbone. Random sampling: the estimate, not the sampler, removes the
# prior. 1x schedule as the base.
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
            type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)))
