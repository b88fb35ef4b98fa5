"""Stock mmdet configs (Faster R-CNN, Mask R-CNN, Cascade Mask R-CNN, the
LVIS v1 and Seesaw ones) and configs/lvis build with the added lines and
load a stock state dict with only the added tensors missing (no weights are
downloaded: models are built, not initialised)."""
import copy
import glob
import os.path as osp

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config as _Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LVIS = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
PEMS = {'pems.weight', 'pems.bias'}
COUNTS = {'loss_cls.class_counts'}
_STOCK = {}
MIM = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')


class Config:
    """``Config.fromfile`` that also reads ``mmdet::path`` (mmdet's
    packaged configs)."""

    @staticmethod
    def fromfile(path: str) -> _Config:
        if path.startswith('mmdet::'):
            path = osp.join(MIM, path[len('mmdet::'):])
        return _Config.fromfile(path)


def _stock_state(config: str) -> dict:
    if config not in _STOCK:
        torch.manual_seed(0)
        _STOCK[config] = MODELS.build(
            Config.fromfile(config).model).state_dict()
    return _STOCK[config]


def _npe(head: dict) -> dict:
    return dict(type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)


def _loss(type_, **kwargs):
    return dict(loss_cls=dict(_delete_=True, type=type_, **kwargs))


CASES = [
    # (stock config, bbox-head lines, suffixes the stock state lacks)
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', _npe, PEMS),
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
     lambda h: _loss('BalancedSoftmaxRoILoss'), COUNTS),
    ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
     lambda h: _loss('PostHocLARoILoss', tau=1.0), COUNTS),
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', _npe, PEMS),
    (LVIS, _npe, PEMS),
    ('mmdet::seesaw_loss/mask-rcnn_r50_fpn_seesaw-loss_random-ms-2x_lvis-v1'
     '.py', _npe, PEMS),
]


def _prefixed(model, suffixes):
    return {
        f'roi_head.bbox_head.{s}'
        for s in suffixes if f'roi_head.bbox_head.{s}' in model.state_dict()
    }


@pytest.mark.parametrize(
    'config, lines, added',
    CASES,
    ids=lambda c: c if isinstance(c, str) else getattr(c, '__name__', ''))
def test_stock_config_with_added_lines_loads_the_stock_state(
        config, lines, added):
    cfg = Config.fromfile(config)
    head = cfg.model.roi_head.bbox_head
    change = lines(head)
    if change.get('type') == 'NPEShared2FCBBoxHead':
        head.update(change)
    else:
        cfg.merge_from_dict({'model.roi_head.bbox_head': change})
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(
        _stock_state(config), strict=False)
    assert not unexpected
    assert set(missing) == _prefixed(model, added) and missing


def test_cascade_mask_rcnn_with_npe_heads_loads_the_stock_state():
    config = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
    cfg = Config.fromfile(config)
    cfg.model.roi_head.type = 'NPECascadeRoIHead'
    for head in cfg.model.roi_head.bbox_head:
        head.update(type='NPEShared2FCBBoxHead', num_pems=1)
    model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(
        _stock_state(config), strict=False)
    assert not unexpected
    assert sorted(missing) == sorted(f'roi_head.bbox_head.{i}.{p}'
                                     for i in range(3) for p in PEMS)


LVIS_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'lvis', '*.py')))


def test_every_lvis_config_is_named_after_its_method():
    names = [osp.basename(c) for c in LVIS_CONFIGS]
    for method in ('balanced-sigmoid', 'balanced-softmax', 'la-posthoc',
                   'npe-frozen', 'npe-joint'):
        assert any(method in n for n in names), method
    assert all(n.endswith('_lvis-v1.py') for n in names)


@pytest.mark.parametrize(
    'path', [c for c in LVIS_CONFIGS if '_r50_' in c], ids=osp.basename)
def test_lvis_configs_build_and_load_the_stock_lvis_state(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(copy.deepcopy(cfg.model))
    head = model.roi_head.bbox_head
    assert head.num_classes == 1203
    name = osp.basename(path)
    random = 'random' in name
    dataset = cfg.train_dataloader.dataset
    # Random sampling for the methods that remove the prior themselves;
    # the stock repeat-factor set for what runs on the stock checkpoint.
    assert (dataset.type == 'LVISV1Dataset') == random
    assert random or dataset.oversample_thr == 1e-3
    if 'balanced-sigmoid' in name:
        # One sigmoid per category: the classifier does not load, the rest
        # does.
        assert head.fc_cls.out_features == 1203
        missing, unexpected = model.load_state_dict(
            {
                k: v
                for k, v in _stock_state(LVIS).items() if 'fc_cls' not in k
            },
            strict=False)
        balms = 'balanced-sigmoid-balms' in name
        # Each config says which variant it trains (the guide's table).
        assert (head.loss_cls.variant,
                head.loss_cls.class_counts_kind) == (('balms',
                                                      'images') if balms else
                                                     ('slides', 'instances'))
        assert not unexpected and set(missing) == {
            'roi_head.bbox_head.fc_cls.weight',
            'roi_head.bbox_head.fc_cls.bias',
            'roi_head.bbox_head.loss_cls.class_counts'
        } | ({'roi_head.bbox_head.loss_cls.num_images'} if balms else set())
        return
    missing, unexpected = model.load_state_dict(
        _stock_state(LVIS), strict=False)
    assert not unexpected
    added = PEMS if 'npe' in name else COUNTS
    assert set(missing) == _prefixed(model, added)
    if 'la-posthoc' in name or 'npe-frozen' in name:
        assert cfg.load_from.startswith('https://download.openmmlab.com/')
        assert 'r50_fpn_sample1e-3_mstrain_1x_lvis_v1' in cfg.load_from
    if 'npe-frozen' in name:
        hooks = {h.type: h for h in cfg.custom_hooks}
        frozen = hooks['FrozenBackboneHook'].modules
        for module in frozen:
            model.get_submodule(module)  # every name exists
        trainable = {
            n
            for n, _ in model.named_parameters()
            if not any(n.startswith(m + '.') for m in frozen)
        }
        assert trainable == {
            'roi_head.bbox_head.pems.weight', 'roi_head.bbox_head.pems.bias'
        }


@pytest.mark.parametrize(
    'path', [c for c in LVIS_CONFIGS if '_r101_' in c], ids=osp.basename)
def test_r101_lvis_configs_follow_their_r50_ones(path):
    cfg = Config.fromfile(path)
    r50 = Config.fromfile(path.replace('_r101_', '_r50_'))
    assert cfg.model.backbone.depth == 101
    cfg.model.backbone.depth = 50
    cfg.model.backbone.init_cfg = r50.model.backbone.init_cfg
    assert cfg.model == r50.model
    if r50.get('load_from'):
        assert 'r101_fpn_sample1e-3_mstrain_1x_lvis_v1' in cfg.load_from


def test_input_check_sees_the_detector_heads():
    """InputCheckHook compares the box / mask heads' num_classes (every
    cascade stage) with the data set's classes, as for mmseg / mmpretrain
    heads (an LVIS-format set names its own categories only through
    metainfo)."""
    from types import SimpleNamespace

    from det_helpers import tiny_detector_cfg
    from mmdet.registry import MODELS

    from mmnpe.engine import InputCheckHook
    from mmnpe.engine.hooks.input_check_hook import model_num_classes
    model = MODELS.build(tiny_detector_cfg(with_mask=True))
    assert model_num_classes(model) == [('roi_head.bbox_head', 5),
                                        ('roi_head.mask_head', 5)]
    cascade = MODELS.build(tiny_detector_cfg(cascade=True))
    assert [n for n, _ in model_num_classes(cascade)] == [
        'roi_head.bbox_head[0]', 'roi_head.bbox_head[1]',
        'roi_head.bbox_head[2]'
    ]
    dataset = SimpleNamespace(metainfo=dict(classes=tuple('abcdefg')))
    runner = SimpleNamespace(
        model=model, test_dataloader=SimpleNamespace(dataset=dataset))
    with pytest.raises(
            ValueError,
            match=r'has 7 classes .* but model\.roi_head\.bbox_head\.'
            r'num_classes = 5, model\.roi_head\.mask_head\.num_classes = 5'):
        InputCheckHook().before_test(runner)
