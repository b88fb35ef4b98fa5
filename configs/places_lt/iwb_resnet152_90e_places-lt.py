# IWB stage 2 (class-balanced CE + KL(softmax|W| || softmax(lambda * NC * HC)),
# the paper's Eq. 8 direction) fine-tuning the classifier of the CE run of the
# same backbone and data set; lambda = 0.05. Train
# ce_resnet152_90e_places-lt.py first: its last checkpoint (in tools/train.py's
# default work dir) is load_from; override with --cfg-options load_from=PATH.
_base_ = [
    'mmpretrain::_base_/models/resnet152.py', './_base_/datasets/places_lt.py',
    './_base_/schedules/iwb_10e.py'
]
load_from = 'work_dirs/ce_resnet152_90e_places-lt/epoch_90.pth'
model = dict(
    head=dict(
        type='IWBClsHead',
        num_classes=365,
        class_counts=None,
        iwb_lambda=0.05,
        kl_direction='forward',
        loss=dict(_delete_=True, type='ClassBalancedLoss', beta=0.9999)))
