# ImageNet-LT (Liu et al., CVPR 2019): 115 846 training images over 1 000
# classes (1 280 to 5 per class); val 20 000 and test 50 000, both balanced.
# The split lists sit beside the ImageNet-2012 folders they name:
#   data/ImageNet_LT/ImageNet_LT_{train,val,test}.txt, train/<wnid>/, val/
# Stock ImageNet pipelines (RandomResizedCrop 224 + flip; test: short edge
# 256, centre crop 224), 32 images per GPU: 8 GPUs make the batch of 256.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)
data_root = 'data/ImageNet_LT'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='ImageNet_LT_train.txt',
        num_classes=1000,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='ImageNet_LT_val.txt',
        num_classes=1000,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='ImageNet_LT_test.txt',
        num_classes=1000,
        pipeline={{_base_.test_pipeline}}))
# Many / Medium / Few from the training list's counts (ClassCountsHook, in
# the schedules); _delete_: the stock Accuracy's topk would reach it.
val_evaluator = dict(_delete_=True, type='LongTailAccuracy')
test_evaluator = dict(_delete_=True, type='LongTailAccuracy')
