# Places-LT (Liu et al., CVPR 2019): 62 500 training images over 365 scene
# classes (4 980 to 5 per class); val 7 300 and test 36 500, both balanced.
# The split lists sit beside the Places365 (256x256) folders they name:
#   data/Places_LT/Places_LT_{train,val,test}.txt, data_256/..., val_256/...
# Stock ImageNet pipelines (RandomResizedCrop 224 + flip; test: short edge
# 256, centre crop 224), 32 images per GPU: 8 GPUs make the batch of 256.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)
data_root = 'data/Places_LT'
data_preprocessor = dict(num_classes=365)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='Places_LT_train.txt',
        num_classes=365,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='Places_LT_val.txt',
        num_classes=365,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='Places_LT_test.txt',
        num_classes=365,
        pipeline={{_base_.test_pipeline}}))
# Many / Medium / Few from the training list's counts (ClassCountsHook, in
# the schedules); _delete_: the stock Accuracy's topk would reach it.
val_evaluator = dict(_delete_=True, type='LongTailAccuracy')
test_evaluator = dict(_delete_=True, type='LongTailAccuracy')
