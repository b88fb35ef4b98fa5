# CE, plain linear classifier; ResNeXt-50 (32x4d) from scratch, the authors'
# ImageNet-LT schedule (180 epochs, cosine).
_base_ = [
    'mmpretrain::_base_/models/resnext50_32x4d.py',
    './_base_/datasets/imagenet_lt.py', './_base_/schedules/sgd_coslr_180e.py'
]
