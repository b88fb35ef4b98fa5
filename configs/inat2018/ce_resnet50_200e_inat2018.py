# CE, plain linear classifier; ResNet-50 from scratch, the authors' iNaturalist
# 2018 schedule (200 epochs, cosine).
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', './_base_/datasets/inat2018.py',
    './_base_/schedules/sgd_coslr_200e.py'
]
model = dict(head=dict(num_classes=8142))
