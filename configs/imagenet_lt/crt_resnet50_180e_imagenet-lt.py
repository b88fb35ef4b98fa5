# cRT (stage 2: classifier re-initialised, re-trained with class-balanced
# sampling) on the CE run of the same backbone and data set. Train
# ce_resnet50_180e_imagenet-lt.py first: its last checkpoint (in
# tools/train.py's default work dir) is load_from; override with --cfg-options
# load_from=PATH.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    './_base_/datasets/imagenet_lt.py', './_base_/schedules/crt_10e.py'
]
load_from = 'work_dirs/ce_resnet50_180e_imagenet-lt/epoch_180.pth'
train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassBalancedSampler'))
