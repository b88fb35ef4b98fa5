# HP-1 (a documented RECONSTRUCTION: the paper only says HP-1 uses a larger
# batch than HP-2). Batch 512 with the lr scaled linearly (0.1 x 4), a 5-epoch
# linear warm-up, otherwise HP-2 (wd 2e-4, 200 epochs, x0.1 at 160 / 180).
_base_ = './cifar10_hp2.py'
optim_wrapper = dict(optimizer=dict(lr=0.4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[160, 180], gamma=0.1)
]
