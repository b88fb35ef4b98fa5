# Balanced Sigmoid (Balanced Activation slides; random sampling, as the
# method calls for: the offset removes the training prior; under
# repeat-factor sampling ClassCountsHook counts the repeated images, so the
# offset would remove what the sampling leaves of it, not the prior twice).
# The RoI classifier has one sigmoid per category and no background
# channel; training adds the counts' offset
# log(f_j / (1 - f_j)) + log(k - 1) to its logits, test time uses the plain
# sigmoids. Instances per category are counted from the training set by
# ClassCountsHook.
_base_ = './faster-rcnn_r18-tiny_fpn_synthetic-lvis.py'

# A sigmoid classifier starts at the training marginal: with the offset
# added, bias b = log(p / (1 - p)), p = 0.25 / (k - 1), gives
# sigmoid(b + offset_j) ~ 0.25 * f_j, the chance that a sampled RoI (a
# quarter positive) is of category j. k = 12 here.
model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(
                _delete_=True, type='BalancedSigmoidRoILoss',
                kind='instances'),
            init_cfg=[
                dict(
                    type='Normal',
                    std=0.01,
                    bias=-3.7612,
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
