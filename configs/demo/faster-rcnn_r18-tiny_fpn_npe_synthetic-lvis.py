# NPE-LA on the demo's CE detector: a linear PEM on the shared-FC feature
# the RoI classifier reads, trained alone with the one-way logistic loss on
# foreground RoIs while every other module stays frozen at the CE
# checkpoint (FrozenBackboneHook); at test time the foreground logits are
# corrected by alpha * eta, p(background) kept.
_base_ = './faster-rcnn_r18-tiny_fpn_synthetic-lvis.py'

# tools/demo.py points this at the CE run's last checkpoint.
load_from = 'work_dirs/demo/det_ce/iter_300.pth'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)))

max_iters = 150
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[100, 125], gamma=0.1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
custom_hooks = [
    dict(
        type='FrozenBackboneHook',
        modules=[
            'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
            'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg'
        ])
]
