# CE, plain linear classifier; ResNet-152 initialised from mmpretrain's
# ImageNet-1k checkpoint, the authors' Places-LT schedule (90 epochs, cosine).
_base_ = [
    'mmpretrain::_base_/models/resnet152.py', './_base_/datasets/places_lt.py',
    './_base_/schedules/sgd_coslr_90e.py'
]
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            # resnet152_8xb32_in1k of mmpretrain's model zoo (ImageNet-1k,
            # top-1 78.48); only backbone.* weights are taken.
            checkpoint=('https://download.openmmlab.com/mmclassification/v0/'
                        'resnet/resnet152_8xb32_in1k_20210901-4d7582fa.pth'),
            prefix='backbone')),
    head=dict(num_classes=365))
