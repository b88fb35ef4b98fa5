"""NPETwoStageDetector: on a frozen detector the PEM iteration runs the
backbone, the RPN's proposals, the RoI sampler and the box head's shared
FCs only (no RPN loss, no fc_cls / fc_reg, no mask branch), and gives the
PEMs the same loss and, after N iterations, the same weights as the stock
iteration (to float rounding: the foreground RoIs alone go through the
FCs); anything else trainable is the stock detector."""
import copy

import pytest
import torch
from det_helpers import build_detector, random_det_batch, tiny_detector_cfg
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmengine.optim import OptimWrapper

from mmnpe.engine import FrozenBackboneHook

FROZEN = [
    'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
    'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg'
]
MASK = ['roi_head.mask_head']


def _cfg(detector_type='NPETwoStageDetector',
         with_mask=True,
         bbox_head=None,
         **kwargs):
    cfg = tiny_detector_cfg(
        bbox_head=bbox_head
        or dict(type='NPEShared2FCBBoxHead', num_pems=2, scale_factor=1.0),
        with_mask=with_mask,
        **kwargs)
    cfg.type = detector_type
    # A sampler that draws no random numbers in the RPN: the RoI sampler's
    # draws are then those of the stock iteration (the stock RPN loss's
    # RandomSampler would consume some first).
    cfg.train_cfg.rpn.sampler = dict(type='PseudoSampler')
    return cfg


def _frozen(model, modules):
    hook = FrozenBackboneHook(modules=modules)
    runner = type('R', (), dict(model=model))()
    hook.before_train(runner)
    return hook, runner


def _train(model, hook, runner, steps=3, with_mask=True):
    wrapper = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.5,
                        momentum=0.9,
                        weight_decay=1e-3))
    logs = []
    for i in range(steps):
        model.train()
        hook.before_train_iter(runner, i)
        torch.manual_seed(100 + i)  # the RoI sampler's draws
        batch = random_det_batch(seed=i, with_mask=with_mask)
        logs.append(model.train_step(batch, wrapper))
    return logs


@pytest.mark.parametrize('with_mask', [True, False])
def test_frozen_pem_iteration_gives_the_stock_pem_weights(with_mask):
    torch.manual_seed(0)
    fast = build_detector(_cfg(with_mask=with_mask))
    stock = build_detector(
        _cfg('MaskRCNN' if with_mask else 'FasterRCNN', with_mask=with_mask))
    stock.load_state_dict(fast.state_dict())
    frozen = FROZEN + (MASK if with_mask else [])
    results = []
    for model in (fast, stock):
        hook, runner = _frozen(model, frozen)
        assert model.roi_head.bbox_head.pems.weight.requires_grad
        before = copy.deepcopy(model.state_dict())
        logs = _train(model, hook, runner, with_mask=with_mask)
        results.append((before, model.state_dict(), logs))
    assert fast.trains_pems_only()
    (before, after, fast_logs), (_, stock_after, stock_logs) = results
    # The same PEM loss, iteration by iteration; the fast one logs only it.
    for a, b in zip(fast_logs, stock_logs):
        assert set(a) == {'loss', 'loss_npe'}
        assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox'} <= set(b)
        torch.testing.assert_close(a['loss_npe'], b['loss_npe'])
    # The PEMs moved, identically; nothing else did.
    for key in after:
        if '.pems.' in key:
            assert not torch.equal(before[key], after[key]), key
            torch.testing.assert_close(after[key], stock_after[key])
        else:
            assert torch.equal(before[key], after[key]), key


def test_frozen_pem_iteration_skips_rpn_loss_box_losses_and_mask_branch(
        monkeypatch):
    torch.manual_seed(0)
    model = build_detector(_cfg())
    hook, runner = _frozen(model, FROZEN + MASK)
    calls = {}

    def count(name):

        def hook_fn(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1

        return hook_fn

    head = model.roi_head.bbox_head
    for name, module in (('fc_cls', head.fc_cls), ('fc_reg', head.fc_reg),
                         ('mask_head', model.roi_head.mask_head),
                         ('mask_roi_extractor',
                          model.roi_head.mask_roi_extractor),
                         ('shared_fcs', head.shared_fcs[0]),
                         ('pems', head.pems), ('rpn_head', model.rpn_head)):
        module.register_forward_hook(count(name))

    def refuse(*args, **kwargs):
        raise AssertionError('a skipped part ran')

    for owner, name in ((model.rpn_head, 'loss_by_feat'), (head, 'loss'),
                        (model.roi_head, 'mask_loss'),
                        (model.roi_head.mask_head, 'get_targets')):
        monkeypatch.setattr(owner, name, refuse)
    rows = []
    head.shared_fcs[0].register_forward_hook(
        lambda module, inputs, output: rows.append(inputs[0].shape[0]))
    _train(model, hook, runner, steps=1)
    assert calls == dict(shared_fcs=1, pems=1, rpn_head=1)
    # The foreground RoIs only, of the 2 x 64 sampled (a quarter positive at
    # most).
    assert 0 < rows[0] <= 2 * 64 // 4


def test_classifier_features_are_what_fc_cls_reads():
    for kind, extra in (('NPEShared2FCBBoxHead',
                         {}), ('NPEShared4Conv1FCBBoxHead',
                               dict(conv_out_channels=8))):
        torch.manual_seed(0)
        head = MODELS.build(
            dict(
                type=kind,
                in_channels=4,
                fc_out_channels=8,
                roi_feat_size=2,
                num_classes=5,
                num_pems=1,
                **extra)).train()
        x = torch.randn(6, 4, 2, 2)
        assert torch.equal(
            head.classifier_features(x),
            head._forward_with_feats(x)[2])


def test_anything_else_trainable_is_the_stock_iteration():
    torch.manual_seed(0)
    model = build_detector(_cfg())
    # Joint training: everything trains.
    assert not model.trains_pems_only()
    logs = model(
        **model.data_preprocessor(random_det_batch(with_mask=True), True),
        mode='loss')
    assert {'loss_rpn_cls', 'loss_cls', 'loss_mask', 'loss_npe'} <= set(logs)
    # The mask head left trainable: the stock iteration too.
    _frozen(model, FROZEN)
    assert not model.trains_pems_only()
    # No PEM at all: never the PEM-only path.
    plain = build_detector(
        dict(tiny_detector_cfg(), type='NPETwoStageDetector'))
    _frozen(plain, FROZEN[:-1])
    assert not plain.trains_pems_only()


def test_frozen_cascade_skips_the_rpn_loss_only():
    torch.manual_seed(0)
    cfg = _cfg(
        with_mask=False, cascade=True, roi_head_type='NPECascadeRoIHead')
    for head in cfg.roi_head.bbox_head:
        head.update(type='NPEShared2FCBBoxHead', num_pems=1)
    model = build_detector(cfg)
    frozen = ['backbone', 'neck', 'rpn_head'] + [
        f'roi_head.bbox_head.{i}.{m}' for i in range(3)
        for m in ('shared_fcs', 'fc_cls', 'fc_reg')
    ]
    _frozen(model, frozen)
    assert model.trains_pems_only()
    model.train()
    logs = model(
        **model.data_preprocessor(random_det_batch(), True), mode='loss')
    assert not any(k.startswith('loss_rpn') for k in logs)
    assert {'s0.loss_npe', 's1.loss_npe', 's2.loss_npe'} <= set(logs)
    assert logs['s2.loss_npe'].requires_grad


def _freeze_by_requires_grad_only(model):
    """Everything but the PEMs frozen by ``requires_grad=False`` and left in
    training mode (no FrozenBackboneHook)."""
    for name, param in model.named_parameters():
        param.requires_grad = '.pems.' in name


def test_training_batchnorm_in_the_box_head_takes_the_stock_path():
    # The foreground RoIs alone through a training BatchNorm would normalise
    # with (and record) other batch statistics than the stock iteration.
    head = dict(
        type='NPEShared4Conv1FCBBoxHead',
        num_pems=1,
        conv_out_channels=8,
        norm_cfg=dict(type='BN', requires_grad=True))
    torch.manual_seed(0)
    fast = build_detector(_cfg(with_mask=False, bbox_head=head))
    stock = build_detector(_cfg('FasterRCNN', with_mask=False, bbox_head=head))
    stock.load_state_dict(fast.state_dict())
    states, logs = [], []
    for model in (fast, stock):
        _freeze_by_requires_grad_only(model)
        wrapper = OptimWrapper(
            torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                            lr=0.5))
        model.train()
        torch.manual_seed(100)
        logs.append(model.train_step(random_det_batch(seed=0), wrapper))
        states.append(model.state_dict())
    torch.testing.assert_close(logs[0]['loss_npe'], logs[1]['loss_npe'])
    for key in states[1]:
        torch.testing.assert_close(states[0][key], states[1][key], msg=key)
    assert fast.trains_pems_only() and not fast._fast_roi_path()
    # In eval mode (FrozenBackboneHook) the fast path is taken again.
    fast.roi_head.bbox_head.eval()
    assert fast._fast_roi_path()


def test_training_dropout_or_overridden_roi_head_takes_the_stock_path():
    torch.manual_seed(0)
    model = build_detector(_cfg(with_mask=False))
    hook, runner = _frozen(model, FROZEN)
    model.train()
    hook.before_train_iter(runner, 0)
    assert model._fast_roi_path()
    model.roi_head.bbox_head.drop = torch.nn.Dropout(0.5)
    assert not model._fast_roi_path()
    model.roi_head.bbox_head.drop.eval()
    assert model._fast_roi_path()
    # An RoI head of its own box forward / loss (DoubleHeadRoIHead).
    for name in ('_bbox_forward', 'bbox_loss', 'loss'):
        own = type('OwnRoIHead', (StandardRoIHead, ), {
            name: lambda self, *args, **kwargs: None
        })
        model.roi_head.__class__ = own
        assert not model._fast_roi_path(), name
    model.roi_head.__class__ = StandardRoIHead


def test_classifier_features_run_an_overridden_stock_forward():
    from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

    from mmnpe.det.roi_heads.bbox_heads.npe_bbox_head_mixin import \
        NPEBBoxHeadMixin

    class Doubled(Shared2FCBBoxHead):

        def forward(self, x):
            return super().forward(2 * x)

    class NPEDoubled(NPEBBoxHeadMixin, Doubled):
        pass

    torch.manual_seed(0)
    head = NPEDoubled(
        in_channels=4,
        fc_out_channels=8,
        roi_feat_size=2,
        num_classes=5,
        num_pems=1).train()
    x = torch.randn(6, 4, 2, 2)
    torch.testing.assert_close(
        head.classifier_features(x),
        head._forward_with_feats(x)[2],
        rtol=0,
        atol=0)
