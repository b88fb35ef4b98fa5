# IWB stage 2 (class-balanced CE + KL(softmax|W| || softmax(lambda * NC * HC)),
# the paper's Eq. 8 direction) fine-tuning the classifier of the CE run of the
# same backbone and data set; lambda = 0.01. Train ce_resnet50_200e_inat2018.py
# first: its last checkpoint (in tools/train.py's default work dir) is
# load_from; override with --cfg-options load_from=PATH.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py', './_base_/datasets/inat2018.py',
    './_base_/schedules/iwb_10e.py'
]
load_from = 'work_dirs/ce_resnet50_200e_inat2018/epoch_200.pth'
model = dict(
    head=dict(
        type='IWBClsHead',
        num_classes=8142,
        class_counts=None,
        iwb_lambda=0.01,
        kl_direction='forward',
        loss=dict(_delete_=True, type='ClassBalancedLoss', beta=0.9999)))
