# iNaturalist 2018 (Van Horn et al., CVPR 2018): 437 513 training images over
# 8 142 species, val 24 426 (3 per class). The benchmark has no labelled test
# split: val is both the validation and the test set. The split lists sit
# beside the image folder they name:
#   data/iNaturalist2018/iNaturalist18_{train,val}.txt, train_val2018/...
# Stock ImageNet pipelines (RandomResizedCrop 224 + flip; test: short edge
# 256, centre crop 224), 32 images per GPU: 8 GPUs make the batch of 256.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32.py'
custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)
data_root = 'data/iNaturalist2018'
data_preprocessor = dict(num_classes=8142)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='iNaturalist18_train.txt',
        num_classes=8142,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LongTailListDataset',
        data_root=data_root,
        ann_file='iNaturalist18_val.txt',
        num_classes=8142,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
# Many / Medium / Few from the training list's counts (ClassCountsHook, in
# the schedules); _delete_: the stock Accuracy's topk would reach it.
val_evaluator = dict(_delete_=True, type='LongTailAccuracy')
test_evaluator = val_evaluator
