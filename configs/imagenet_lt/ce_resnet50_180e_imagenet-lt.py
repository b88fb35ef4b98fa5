# CE, plain linear classifier; ResNet-50 from scratch, the authors' ImageNet-LT
# schedule (180 epochs, cosine).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    './_base_/datasets/imagenet_lt.py', './_base_/schedules/sgd_coslr_180e.py'
]
