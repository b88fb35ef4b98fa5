# Balanced Sigmoid as the instance-segmentation code released with Balanced
# Meta-Softmax (Ren et al. 2020) trains it (variant='balms'): only
# foreground RoIs get an offset, z_j + log(f_j / (1 - f_j)), the slides'
# constant log(k - 1) dropped, with the image frequency f_j =
# image_count_j / number_of_images of the training set (kind='images';
# ClassCountsHook counts both, the number of images included). Background
# RoIs train on the plain logits; plain sigmoids at test time. Everything
# else as the slides' config (*-balanced-sigmoid_random-*): trained from
# scratch with random sampling, so the frequencies are those of LVIS (with
# repeat-factor sampling they would be those of the repeated images). The
# loss is the BALMS code's; its schedule (fine-tuning the classifier of a
# sigmoid model trained with repeat-factor sampling) is not reproduced.
_base_ = './mask-rcnn_r50_fpn_balanced-sigmoid_random-ms-1x_lvis-v1.py'

# The classifier's bias starts at the BALMS code's prior probability
# 0.001: log(0.001 / 0.999) = -6.9068 (no offset on background RoIs, so
# the slides' config's -8.4778 does not carry over).
model = dict(
    roi_head=dict(
        bbox_head=dict(
            loss_cls=dict(kind='images', variant='balms'),
            init_cfg=[
                dict(
                    type='Normal',
                    std=0.01,
                    bias=-6.9068,
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
