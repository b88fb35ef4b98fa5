# Balanced Sigmoid (Balanced Activation slides, LVIS v1 table: Mask R-CNN
# R50-FPN mask AP 25.1 / AP_r 18.3 against 22.1 / 11.6 with repeat-factor
# sampling) on mmdet's LVIS v1 Mask R-CNN: one sigmoid per category and no
# background channel, plain sigmoids at test time. The slides' formula
# (variant='slides'): every RoI trains on
# z_j - log((n/k)/n_j * (n - n_j)/(n - n/k)), the constant log(k - 1)
# included, with the instances per category of the training set
# (ClassCountsHook counts them at the start). The BALMS code's variant is
# the *-balanced-sigmoid-balms_* config.
#
# Random sampling, as the slides' row: the offset then removes the
# long-tailed prior of LVIS. With the base's repeat-factor sampling instead,
# ClassCountsHook would count the repeated images, and the offset would
# remove what the sampling leaves of the prior (not the prior twice).
# Schedule, pipeline and test settings are the base's (1x, multi-scale, 300
# detections at score >= 1e-4).
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)

# The base wraps the LVIS set in ClassBalancedDataset; train on it directly.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LVISV1Dataset',
        data_root='data/lvis_v1/',
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{_base_.train_pipeline}}))

# The classifier starts at the training marginal: with the offset added,
# bias log(p / (1 - p)), p = 0.25 / (k - 1), gives sigmoid ~ 0.25 * f_j,
# the chance that a sampled RoI (a quarter positive) is of category j;
# k = 1203 gives -8.4778.
model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True,
                type='BalancedSigmoidRoILoss',
                kind='instances',
                variant='slides'),
            init_cfg=[
                dict(
                    type='Normal',
                    std=0.01,
                    bias=-8.4778,
                    override=dict(name='fc_cls')),
                dict(type='Normal', std=0.001, override=dict(name='fc_reg')),
                dict(
                    type='Xavier',
                    distribution='uniform',
                    override=[
                        dict(name='shared_fcs'),
                        dict(name='cls_fcs'),
                        dict(name='reg_fcs')
                    ])
            ])))
custom_hooks = [dict(type='ClassCountsHook')]
