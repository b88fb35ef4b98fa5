# CIFAR-10-LT (LDAM protocol, seed 0) from the standard python pickles in
# data/cifar10/cifar-10-batches-py; the test split is the balanced 10 000.
_base_ = 'mmpretrain::_base_/datasets/cifar10_bs16.py'
# rho is the training set's alone (a leaf config sets
# train_dataloader.dataset.imbalance_ratio); the batch is the schedule's
# (auto_scale_lr.base_batch_size of _base_/schedules/).
train_dataloader = dict(
    dataset=dict(
        type='CIFAR10LT', imbalance_ratio=100, seed=0, download=False))
# The balanced test split needs no rho.
val_dataloader = dict(
    batch_size=256, dataset=dict(type='CIFAR10LT', download=False))
test_dataloader = val_dataloader
# _delete_: the stock Accuracy's topk would reach LongTailAccuracy. Its
# Many / Medium / Few groups come from the training set's images per class,
# counted by the schedules' ClassCountsHook before validation and testing.
val_evaluator = dict(_delete_=True, type='LongTailAccuracy')
test_evaluator = val_evaluator
