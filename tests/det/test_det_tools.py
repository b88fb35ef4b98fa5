"""tools/train.py, tools/test.py (mmdet's flags: --out, --show-dir, --tta)
and tools/dist_train.sh (2 CPU processes) end to end on the tiny
LVIS-format set, LVISMetric (bbox and segm, AP_r / AP_c / AP_f) evaluating
and checked against the LVIS API on the dumped predictions and on dumps of
known AP (the ground-truth boxes: 1; half the categories missed: 0.5), --tta
checked to score with the loss's sigmoids: a CE Mask R-CNN,
post-hoc LA (against the CE predictions, tau through --cfg-options) and a
frozen-PEM NPE-LA on its checkpoint (the PEMs move, nothing else; alpha
through --cfg-options, 0 giving the CE predictions), Balanced Sigmoid and
Balanced Softmax trained from scratch, Balanced Sigmoid on repeat-factor
counts, NPECascadeRoIHead trained and tested (alpha 0: the stock
cascade's detections; alpha 1: others)."""
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


def _preds(path: str) -> list:
    with open(path, 'rb') as f:
        return pickle.load(f)


def _same_preds(a: list, b: list) -> bool:
    """Whether two --out dumps hold bit-identical detections (of the same,
    non-empty, list of images)."""
    assert len(a) == len(b) > 0, (len(a), len(b))
    assert [x['img_id'] for x in a] == [y['img_id'] for y in b]
    return all(
        torch.equal(x['pred_instances'][k], y['pred_instances'][k])
        for x, y in zip(a, b) for k in ('bboxes', 'scores', 'labels'))


def _lvis_api_bbox(root: str, preds: list) -> dict:
    """The LVIS API's own bbox AP of a --out dump (LVISMetric's numbers,
    computed independently of mmdet)."""
    from lvis import LVIS, LVISEval, LVISResults

    import mmnpe.det  # noqa: F401  (np.float for lvis.eval)
    gt = LVIS(osp.join(root, 'annotations', 'lvis_v1_val.json'))
    cat_ids = sorted(gt.get_cat_ids())
    results = []
    for pred in preds:
        inst = pred['pred_instances']
        for box, score, label in zip(inst['bboxes'].tolist(),
                                     inst['scores'].tolist(),
                                     inst['labels'].tolist()):
            x1, y1, x2, y2 = box
            results.append(
                dict(
                    image_id=pred['img_id'],
                    category_id=cat_ids[label],
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    score=score))
    ev = LVISEval(gt, LVISResults(gt, results, max_dets=300), 'bbox')
    ev.params.imgIds = [p['img_id'] for p in preds]
    ev.run()
    return ev.get_results()


def _gt_dump(root: str) -> list:
    """A predictions dump made of the validation set's ground-truth boxes
    (score 1), in the --out dump's format (original image coordinates)."""
    with open(osp.join(root, 'annotations', 'lvis_v1_val.json')) as f:
        val = json.load(f)
    cat_ids = sorted(c['id'] for c in val['categories'])
    dump = []
    for image in val['images']:
        anns = [a for a in val['annotations'] if a['image_id'] == image['id']]
        boxes = [[x, y, x + w, y + h]
                 for x, y, w, h in (a['bbox'] for a in anns)]
        dump.append(
            dict(
                img_id=image['id'],
                ori_shape=(image['height'], image['width']),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes).reshape(-1, 4),
                    scores=torch.ones(len(anns)),
                    labels=torch.tensor(
                        [cat_ids.index(a['category_id']) for a in anns],
                        dtype=torch.long))))
    return dump


def _lvis_metric_bbox(config: str, dump: list) -> dict:
    """The bbox metrics of the config's test evaluator (LVISMetric, as
    tools/test.py builds it) on a dump."""
    from mmdet.registry import METRICS
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    metric = METRICS.build(dict(cfg.test_evaluator, metric=['bbox']))
    metric.dataset_meta = dict(
        classes=cfg.test_dataloader.dataset.metainfo.classes)
    metric.process({}, dump)
    return metric.evaluate(len(dump))


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


@pytest.fixture(scope='module')
def ce_preds(ce_run):
    """tools/test.py on the CE checkpoint with --out: its predictions."""
    tmp, root, config, ckpt = ce_run
    out = str(tmp / 'ce_preds.pkl')
    run_test(config, ckpt, str(tmp / 'ce_test'), '--out', out).wait()
    return out


def test_lvis_metric_is_the_lvis_apis_on_the_predictions(ce_run, ce_preds):
    """What tools/test.py logs is the LVIS API's AP of the dumped
    detections, not just a number in [0, 1]."""
    tmp, root, _, _ = ce_run
    found = _lvis(str(tmp / 'ce_test'))
    want = _lvis_api_bbox(root, _preds(ce_preds))
    for key in ('AP', 'AP50', 'APr', 'APc', 'APf'):
        assert found[f'lvis/bbox_{key}'] == pytest.approx(
            want[key], abs=6e-4), key


def test_lvis_metric_on_dumps_of_known_ap(ce_run):
    """The tiny model's APs are (near) 0, so the comparison above is weak:
    the config's LVISMetric on the ground-truth boxes gives AP 1, and with
    every second present category's boxes moved off their objects (false
    positives, all its objects missed), AP = the kept categories' share,
    both as the LVIS API computes them."""
    tmp, root, config, _ = ce_run
    gt = _gt_dump(root)
    assert sum(len(p['pred_instances']['labels']) for p in gt) > 0
    found = _lvis_metric_bbox(config, gt)
    want = _lvis_api_bbox(root, gt)
    for key in ('AP', 'AP50', 'AP75'):
        assert found[f'lvis/bbox_{key}'] == pytest.approx(1.0), key
        assert want[key] == pytest.approx(1.0), key
    present = sorted({
        label
        for p in gt
        for label in p['pred_instances']['labels'].tolist()
    })
    assert len(present) >= 2
    missed = set(present[1::2])
    moved = []
    for pred in gt:
        inst = dict(pred['pred_instances'])
        bboxes = inst['bboxes'].clone()
        for i, label in enumerate(inst['labels'].tolist()):
            if label in missed:
                bboxes[i] = torch.tensor([0., 0., 1., 1.])
        moved.append(dict(pred, pred_instances=dict(inst, bboxes=bboxes)))
    share = 1 - len(missed) / len(present)
    found = _lvis_metric_bbox(config, moved)
    want = _lvis_api_bbox(root, moved)
    for key in ('AP', 'AP50', 'AP75'):
        assert found[f'lvis/bbox_{key}'] == pytest.approx(share, abs=6e-4)
        assert want[key] == pytest.approx(share), key


def test_post_hoc_la_on_the_ce_checkpoint_dumps_and_paints_like_mmdet(
        ce_run, ce_preds):
    """tools/test.py: post-hoc LA on the CE checkpoint (counts from the
    training set at test time), with mmdet's --out and --show-dir; its
    detections are not CE's, and tau=0 through --cfg-options gives CE's bit
    for bit."""
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
    preds = _preds(out)
    assert len(preds) == 6  # one per validation image
    assert {'bboxes', 'scores', 'labels',
            'masks'} <= set(preds[0]['pred_instances'])
    # An absolute --show-dir is used as it is (mmdet joins it to the run's
    # folder otherwise).
    assert len(glob.glob(osp.join(show, '*.png'))) == 6
    ce = _preds(ce_preds)
    assert not _same_preds(preds, ce)
    tau0 = str(tmp / 'preds_tau0.pkl')
    run_test(la, ckpt, str(tmp / 'la0'), '--out', tau0, '--cfg-options',
             'model.roi_head.bbox_head.loss_cls.tau=0').wait()
    assert _same_preds(_preds(tau0), ce)


def test_frozen_pem_trains_alone_on_the_ce_checkpoint(ce_run, ce_preds):
    """A frozen-detector PEM run through tools/train.py: the PEMs move,
    every stock tensor is bit-identical, the iteration is the PEM-only one
    (no RPN, box or mask loss); tools/test.py at alpha 0 (--cfg-options)
    gives the CE detections bit for bit, at alpha 1 others."""
    tmp, root, config, ckpt = ce_run
    npe = write_config(
        str(tmp / 'npe.py'),
        config,
        load_from=ckpt,
        model=dict(
            type='NPETwoStageDetector',
            roi_head=dict(
                bbox_head=dict(
                    type='NPEShared2FCBBoxHead', num_pems=2,
                    scale_factor=1.0))),
        custom_hooks=[
            dict(type='FrozenBackboneHook', modules=FROZEN),
            dict(type='DistProbeHook')
        ])
    work = str(tmp / 'npe')
    log = run_train(npe, work).wait()
    # The logged losses (the config dump names loss_mask too).
    assert 'loss_npe: ' in log
    assert 'loss_rpn_cls: ' not in log and 'loss_mask: ' not in log
    stock, final = state_dict(ckpt), state_dict(osp.join(work, 'iter_4.pth'))
    pems = {'roi_head.bbox_head.pems.weight', 'roi_head.bbox_head.pems.bias'}
    assert set(final) - set(stock) == pems
    # Every stock tensor (BN buffers included) is bit-identical.
    assert not differing(stock, final, sorted(stock))
    # ... and the PEMs moved from where training started.
    start = torch.load(
        osp.join(work, 'rank0_start.pth'),
        map_location='cpu',
        weights_only=True)
    assert differing(start, final, sorted(pems)) == sorted(pems)
    assert not differing(start, final, sorted(stock))
    assert 'lvis/segm_APr' in log  # validated at the end
    npe_ckpt = osp.join(work, 'iter_4.pth')
    outs = {}
    for alpha in (0, 1):
        outs[alpha] = str(tmp / f'npe_a{alpha}.pkl')
        run_test(npe, npe_ckpt, str(tmp / f'npe_a{alpha}'), '--out',
                 outs[alpha], '--cfg-options',
                 f'model.roi_head.bbox_head.scale_factor={alpha}').wait()
    ce = _preds(ce_preds)
    assert _same_preds(_preds(outs[0]), ce)
    assert not _same_preds(_preds(outs[1]), ce)


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
    outs = [str(tmp / 'bs_plain.pkl'), str(tmp / 'bs_tta.pkl')]
    run_test(bs, osp.join(work, 'iter_4.pth'), str(tmp / 'plain'), '--out',
             outs[0]).wait()
    run_test(bs, osp.join(work, 'iter_4.pth'), str(tmp / 'tta'), '--tta',
             '--out', outs[1]).wait()
    _lvis(str(tmp / 'tta'), ('bbox', ))
    plain, tta = _preds(outs[0]), _preds(outs[1])
    # The flipped pass changed the detections; the scores are still the
    # sigmoids of the custom activation (in [0, 1], no softmax of 6 + 1).
    assert not _same_preds(plain, tta)
    for pred in tta:
        scores = pred['pred_instances']['scores']
        assert ((scores >= 0) & (scores <= 1)).all()
        assert (pred['pred_instances']['labels'] < 6).all()
    _tta_used_the_sigmoids(bs, osp.join(work, 'iter_4.pth'), tta)


def _tta_used_the_sigmoids(config: str, ckpt: str, tta: list) -> None:
    """The TTA model tools/test.py --tta builds from ``config``, run here on
    the first two images with the loss's ``get_activation`` watched: it is
    called on both flips of each image, gives the C sigmoids of the logits
    (their sum exceeding 1 on some RoI: no softmax), and the detections are
    the tool's."""
    from argparse import Namespace

    from mmdet.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmnpe.det.cli import merge_test_args
    args = Namespace(
        config=config,
        checkpoint=ckpt,
        work_dir=None,
        cfg_options=None,
        launcher='none',
        show=False,
        show_dir=None,
        tta=True,
        out=None)
    cfg = merge_test_args(Config.fromfile(config), args)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    load_checkpoint(model.module, ckpt, map_location='cpu')
    model.eval()
    loss = model.module.roi_head.bbox_head.loss_cls
    calls = []

    def watched(cls_score):
        scores = type(loss).get_activation(loss, cls_score)
        calls.append((cls_score, scores))
        return scores

    loss.get_activation = watched
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    with torch.no_grad():
        preds = model.test_step(pseudo_collate([dataset[0], dataset[1]]))
    assert len(calls) == 2 * 2  # two flips of two images
    for cls_score, scores in calls:
        assert cls_score.shape[1] == 6 and scores.shape[1] == 7
        assert torch.equal(scores[:, :6], cls_score.sigmoid())
        assert (scores[:, :6].sum(dim=1) > 1).any()
    for pred, want in zip(preds, tta[:2]):
        assert pred.img_id == want['img_id']
        got, want = pred.pred_instances, want['pred_instances']
        assert torch.equal(got.labels, want['labels'])
        torch.testing.assert_close(got.scores, want['scores'])
        torch.testing.assert_close(got.bboxes, want['bboxes'])


def test_balanced_softmax_trains_through_the_tools(ce_run):
    tmp, root, config, _ = ce_run
    bs = write_config(
        str(tmp / 'bsoft.py'),
        config,
        model=dict(
            roi_head=dict(
                bbox_head=dict(
                    loss_cls=dict(
                        _delete_=True, type='BalancedSoftmaxRoILoss')))),
        custom_hooks=[dict(type='ClassCountsHook')])
    work = str(tmp / 'bsoft')
    log = run_train(bs, work).wait()
    assert 'BalancedSoftmaxRoILoss.class_counts from the training' in log
    ckpt = state_dict(osp.join(work, 'iter_4.pth'))
    with open(osp.join(root, 'annotations', 'lvis_v1_train.json')) as f:
        cats = sorted(json.load(f)['categories'], key=lambda c: c['id'])
    assert ckpt['roi_head.bbox_head.loss_cls.class_counts'].tolist() == [
        c['instance_count'] for c in cats
    ]
    # The stock C + 1 softmax classifier.
    assert ckpt['roi_head.bbox_head.fc_cls.weight'].shape[0] == 7
    assert 'lvis/segm_APr' in log


def test_balanced_sigmoid_on_repeat_factor_counts(ce_run):
    """Repeat-factor sampling through tools/train.py: the BALMS variant's
    image counts and number of images are those of the repeated set."""
    from mmdet.registry import DATASETS
    from mmengine.config import Config

    from mmnpe.engine import count_dataset_classes
    tmp, root, config, _ = ce_run
    faster = _tiny_mask_rcnn(str(tmp / 'faster_rfs.py'), root, with_mask=False)
    rfs = write_config(
        str(tmp / 'bs_rfs.py'),
        faster,
        train_dataloader=dict(
            dataset=dict(
                _delete_=True,
                type='ClassBalancedDataset',
                oversample_thr=0.3,
                dataset=Config.fromfile(faster).train_dataloader.dataset)),
        model=dict(
            roi_head=dict(
                bbox_head=dict(
                    loss_cls=dict(
                        _delete_=True,
                        type='BalancedSigmoidRoILoss',
                        kind='images',
                        variant='balms')))),
        custom_hooks=[dict(type='ClassCountsHook')])
    work = str(tmp / 'bs_rfs')
    log = run_train(rfs, work).wait()
    assert 'BalancedSigmoidRoILoss.class_counts from the training' in log
    ckpt = state_dict(osp.join(work, 'iter_4.pth'))
    cfg = Config.fromfile(rfs).train_dataloader.dataset.to_dict()
    cfg['dataset']['pipeline'] = []
    repeated = DATASETS.build(cfg)
    want = count_dataset_classes(repeated, kind='images')
    assert len(repeated) > len(repeated.dataset)
    counts = ckpt['roi_head.bbox_head.loss_cls.class_counts']
    assert counts.tolist() == want['counts']
    assert float(
        ckpt['roi_head.bbox_head.loss_cls.num_images']) == len(repeated)


def test_npe_cascade_roi_head_through_the_tools(ce_run):
    """A Cascade R-CNN with NPECascadeRoIHead trained jointly by
    tools/train.py (every stage's PEM loss logged), tested by tools/test.py
    at alpha 0 in every stage (--cfg-options): the stock cascade's
    detections of the same checkpoint, bit for bit; at alpha 1 in every
    stage, others."""
    from det_helpers import tiny_detector_cfg
    tmp, root, _, _ = ce_run
    faster = _tiny_mask_rcnn(
        str(tmp / 'faster_cascade.py'), root, with_mask=False)
    stock_model = tiny_detector_cfg(num_classes=6, cascade=True).to_dict()
    stock_model['data_preprocessor'] = dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32)
    stock = write_config(
        str(tmp / 'cascade_stock.py'),
        faster,
        model=dict(_delete_=True, **stock_model))
    npe_model = tiny_detector_cfg(
        num_classes=6, cascade=True,
        roi_head_type='NPECascadeRoIHead').to_dict()
    npe_model['data_preprocessor'] = stock_model['data_preprocessor']
    for head in npe_model['roi_head']['bbox_head']:
        head.update(type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)
    npe = write_config(
        str(tmp / 'cascade_npe.py'),
        faster,
        model=dict(_delete_=True, **npe_model))
    work = str(tmp / 'cascade')
    log = run_train(npe, work).wait()
    for stage in range(3):
        assert f's{stage}.loss_npe' in log
    ckpt = osp.join(work, 'iter_4.pth')
    assert {f'roi_head.bbox_head.{i}.pems.weight'
            for i in range(3)} <= set(state_dict(ckpt))
    outs = [str(tmp / 'cascade_a0.pkl'), str(tmp / 'cascade_stock.pkl')]
    run_test(
        npe, ckpt, str(tmp / 'cascade_a0'), '--out', outs[0], '--cfg-options',
        *[f'model.roi_head.bbox_head.{i}.scale_factor=0'
          for i in range(3)]).wait()
    run_test(stock, ckpt, str(tmp / 'cascade_stock'), '--out', outs[1]).wait()
    assert _same_preds(_preds(outs[0]), _preds(outs[1]))
    # At alpha 1 in every stage the corrections change the detections.
    outs.append(str(tmp / 'cascade_a1.pkl'))
    run_test(
        npe, ckpt, str(tmp / 'cascade_a1'), '--out', outs[2], '--cfg-options',
        *[f'model.roi_head.bbox_head.{i}.scale_factor=1'
          for i in range(3)]).wait()
    assert not _same_preds(_preds(outs[2]), _preds(outs[1]))
    _lvis(str(tmp / 'cascade_a0'), ('bbox', ))


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


def test_same_preds_refuses_dumps_of_different_images():
    """An empty or truncated dump is not 'the same detections'."""
    pred = dict(
        img_id=0,
        pred_instances=dict(
            bboxes=torch.zeros(1, 4),
            scores=torch.ones(1),
            labels=torch.zeros(1, dtype=torch.long)))
    assert _same_preds([pred], [pred])
    for a, b in (([], []), ([pred], []), ([pred, pred], [pred])):
        with pytest.raises(AssertionError):
            _same_preds(a, b)
    with pytest.raises(AssertionError):
        _same_preds([pred], [dict(pred, img_id=1)])
