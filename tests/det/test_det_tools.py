"""tools/train.py, tools/test.py (mmdet's flags: --out, --show-dir, --tta)
and tools/dist_train.sh (2 CPU processes) end to end on the tiny
LVIS-format set, LVISMetric (bbox and segm, AP_r / AP_c / AP_f) evaluating:
a CE Mask R-CNN, post-hoc LA and a frozen-PEM NPE-LA on its checkpoint,
Balanced Sigmoid trained from scratch."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch
from launch_helpers import (DEMO, DIST_TIMEOUT, differing, metrics,
                            run_dist_train, run_test, run_train, state_dict,
                            write_config)

from mmnpe.det import synthetic_lvis_classes

DET_CE = osp.join(DEMO, 'faster-rcnn_r18-tiny_fpn_synthetic-lvis.py')
FROZEN = [
    'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
    'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
    'roi_head.mask_head'
]


def _tiny_mask_rcnn(path: str, root: str, with_mask=True, **keys) -> str:
    """The demo's CE config shrunk further, with a mask head (or without:
    Faster R-CNN), on ``root``."""
    classes = tuple(synthetic_lvis_classes(6))
    dataset = dict(data_root=root + '/', metainfo=dict(classes=classes))
    evaluator = dict(
        ann_file=root + '/annotations/lvis_v1_val.json',
        metric=['bbox', 'segm'] if with_mask else ['bbox'])
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(64, 64), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor'))
    ]
    model = dict(
        type='MaskRCNN',
        data_preprocessor=dict(pad_mask=True),
        backbone=dict(base_channels=8),
        neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
        rpn_head=dict(in_channels=16, feat_channels=16),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=16),
            bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=6),
            mask_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=14, sampling_ratio=0),
                out_channels=16,
                featmap_strides=[4, 8, 16, 32]),
            mask_head=dict(
                type='FCNMaskHead',
                num_convs=1,
                in_channels=16,
                conv_out_channels=16,
                num_classes=6,
                loss_mask=dict(
                    type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
        train_cfg=dict(rcnn=dict(mask_size=28)),
        test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
    if not with_mask:
        model.update(type='FasterRCNN', data_preprocessor=dict())
        for key in ('mask_roi_extractor', 'mask_head'):
            model['roi_head'].pop(key)
        model.pop('train_cfg')
        model.pop('test_cfg')
        for t in train_pipeline + test_pipeline:
            if t['type'] == 'LoadAnnotations':
                t['with_mask'] = False
    values = dict(
        custom_imports=dict(
            imports=['mmnpe', 'dist_probe'], allow_failed_imports=False),
        model=model,
        train_dataloader=dict(
            batch_size=2, dataset=dict(pipeline=train_pipeline, **dataset)),
        val_dataloader=dict(
            batch_size=2, dataset=dict(pipeline=test_pipeline, **dataset)),
        test_dataloader=dict(
            batch_size=2, dataset=dict(pipeline=test_pipeline, **dataset)),
        val_evaluator=evaluator,
        test_evaluator=evaluator,
        train_cfg=dict(max_iters=4, val_interval=4),
        param_scheduler=[],
        default_hooks=dict(
            checkpoint=dict(interval=4), logger=dict(interval=1)),
        env_cfg=dict(dist_cfg=dict(timeout=DIST_TIMEOUT)),
        log_level='INFO')
    values.update(keys)
    return write_config(path, DET_CE, **values)


def _lvis(work_dir: str, ious=('bbox', 'segm')) -> dict:
    found = metrics(work_dir)
    for iou in ious:
        for key in ('AP', 'AP50', 'APr', 'APc', 'APf'):
            value = found[f'lvis/{iou}_{key}']
            assert value == -1 or 0 <= value <= 1, (key, value)
    return found


@pytest.fixture(scope='module')
def ce_run(tmp_path_factory, lvis_root):
    """tools/train.py on the tiny set: a CE Mask R-CNN, 4 iterations."""
    root, _ = lvis_root
    tmp = tmp_path_factory.mktemp('det_tools')
    config = _tiny_mask_rcnn(str(tmp / 'ce.py'), root)
    work = str(tmp / 'ce')
    log = run_train(config, work).wait()
    # Validation at the end of training ran LVISMetric (np.float path).
    assert 'lvis/segm_AP' in log and 'lvis/bbox_APr' in log
    return tmp, root, config, osp.join(work, 'iter_4.pth')


def test_post_hoc_la_on_the_ce_checkpoint_dumps_and_paints_like_mmdet(ce_run):
    """tools/test.py: post-hoc LA on the CE checkpoint (counts from the
    training set at test time), with mmdet's --out and --show-dir."""
    tmp, root, config, ckpt = ce_run
    la = write_config(
        str(tmp / 'la.py'),
        config,
        model=dict(
            roi_head=dict(
                bbox_head=dict(
                    loss_cls=dict(
                        _delete_=True, type='PostHocLARoILoss', tau=1.0)))),
        custom_hooks=[dict(type='ClassCountsHook')])
    out = str(tmp / 'preds.pkl')
    show = str(tmp / 'show')
    log = run_test(la, ckpt, str(tmp / 'la'), '--out', out, '--show-dir',
                   show).wait()
    assert 'ClassCountsHook: PostHocLARoILoss.class_counts' in log
    found = _lvis(str(tmp / 'la'))
    assert set(found) >= {'lvis/bbox_AP', 'lvis/segm_AP'}
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 6  # one per validation image
    assert {'bboxes', 'scores', 'labels',
            'masks'} <= set(preds[0]['pred_instances'])
    # An absolute --show-dir is used as it is (mmdet joins it to the run's
    # folder otherwise).
    assert len(glob.glob(osp.join(show, '*.png'))) == 6


def test_frozen_pem_trains_alone_on_the_ce_checkpoint(ce_run):
    tmp, root, config, ckpt = ce_run
    npe = write_config(
        str(tmp / 'npe.py'),
        config,
        load_from=ckpt,
        model=dict(
            roi_head=dict(
                bbox_head=dict(
                    type='NPEShared2FCBBoxHead', num_pems=2,
                    scale_factor=1.0))),
        custom_hooks=[dict(type='FrozenBackboneHook', modules=FROZEN)])
    work = str(tmp / 'npe')
    log = run_train(npe, work).wait()
    assert 'loss_npe' in log
    stock, final = state_dict(ckpt), state_dict(osp.join(work, 'iter_4.pth'))
    assert set(final) - set(stock) == {
        'roi_head.bbox_head.pems.weight', 'roi_head.bbox_head.pems.bias'
    }
    # Every stock tensor (BN buffers included) is bit-identical.
    assert not differing(stock, final, sorted(stock))
    assert 'lvis/segm_APr' in log  # validated at the end


def test_balanced_sigmoid_trains_from_scratch_and_tests_with_tta(ce_run):
    """A Faster R-CNN (mmdet's TTA merges boxes only) with one sigmoid per
    category; --tta runs its custom activation on both flips."""
    tmp, root, _, _ = ce_run
    faster = _tiny_mask_rcnn(str(tmp / 'faster.py'), root, with_mask=False)
    bs = write_config(
        str(tmp / 'bs.py'),
        faster,
        model=dict(
            roi_head=dict(
                bbox_head=dict(
                    loss_cls=dict(
                        _delete_=True, type='BalancedSigmoidRoILoss')))),
        custom_hooks=[dict(type='ClassCountsHook')])
    work = str(tmp / 'bs')
    log = run_train(bs, work).wait()
    assert 'BalancedSigmoidRoILoss.class_counts from the training' in log
    ckpt = torch.load(
        osp.join(work, 'iter_4.pth'), map_location='cpu', weights_only=True)
    counts = ckpt['state_dict']['roi_head.bbox_head.loss_cls.class_counts']
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        cats = sorted(json.load(f)['categories'], key=lambda c: c['id'])
    assert counts.tolist() == [c['instance_count'] for c in cats]
    # One sigmoid per category, no background channel.
    assert ckpt['state_dict']['roi_head.bbox_head.fc_cls.weight'].shape[0] == 6
    assert 'lvis/bbox_APr' in log
    run_test(bs, osp.join(work, 'iter_4.pth'), str(tmp / 'tta'),
             '--tta').wait()
    _lvis(str(tmp / 'tta'), ('bbox', ))


def test_dist_train_two_cpu_processes(ce_run):
    """Joint NPE training with 2 gloo processes: DDP over every parameter,
    identical weights on both ranks."""
    tmp, root, config, _ = ce_run
    joint = write_config(
        str(tmp / 'joint.py'),
        config,
        model=dict(
            roi_head=dict(
                bbox_head=dict(type='NPEShared2FCBBoxHead', num_pems=1))),
        train_cfg=dict(max_iters=2, val_interval=100),
        default_hooks=dict(checkpoint=dict(interval=2)),
        custom_hooks=[dict(type='DistProbeHook')])
    work = str(tmp / 'dist')
    run_dist_train(joint, 2, work).wait()
    infos = []
    for rank in (0, 1):
        with open(osp.join(work, f'rank{rank}_info.json')) as f:
            infos.append(json.load(f))
    assert all(i['world_size'] == 2 and i['ddp'] for i in infos)
    assert 'roi_head.bbox_head.pems.weight' in infos[0]['trainable']
    finals = [
        torch.load(osp.join(work, f'rank{r}_final.pth'), weights_only=True)
        for r in (0, 1)
    ]
    # BN statistics are per rank (no buffer broadcast); weights agree.
    assert not differing(finals[0], finals[1], infos[0]['trainable'])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
