# CIFAR-10-LT (LDAM protocol, seed 0) from the standard python pickles in
# data/cifar10/cifar-10-batches-py; the test split is the balanced 10 000.
_base_ = 'mmpretrain::_base_/datasets/cifar10_bs16.py'
# The batch belongs to the schedule (HP-1: 128, HP-2: 64): every leaf
# config sets train_dataloader.batch_size.
train_dataloader = dict(
    dataset=dict(
        type='CIFAR10LT', imbalance_ratio=100, seed=0, download=False))
val_dataloader = dict(
    batch_size=256,
    dataset=dict(
        type='CIFAR10LT', imbalance_ratio=100, seed=0, download=False))
test_dataloader = val_dataloader
# _delete_: the stock Accuracy's topk would reach LongTailAccuracy.
val_evaluator = dict(_delete_=True, type='LongTailAccuracy')
test_evaluator = val_evaluator
