"""NPE box heads: K linear PEMs on the feature fc_cls reads; training output
and loss (OWL on foreground RoIs only, zero weight on background), the
corrected logits keep p(background), scale_factor = 0 is the stock head bit
for bit (head and whole detector), stock checkpoints load with only the PEM
keys missing, gradients reach the backbone when training jointly and only
the PEMs when frozen, Cascade R-CNN and Seesaw, and heads that cannot carry
a PEM are refused when built."""
import copy

import pytest
import torch
import torch.nn.functional as F
from det_helpers import (NUM_CLASSES, build_detector, random_det_batch,
                         tiny_detector_cfg)
from mmdet.registry import MODELS
from mmengine.optim import OptimWrapper

from mmnpe.det import NPEShared2FCBBoxHead
from mmnpe.engine import FrozenBackboneHook
from mmnpe.functional import foreground_logit_adjust, npe_estimate

C = 5


def _head(**kwargs):
    cfg = dict(
        type='NPEShared2FCBBoxHead',
        in_channels=4,
        fc_out_channels=8,
        roi_feat_size=2,
        num_classes=C,
        num_pems=2)
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _stock_like(head, **kwargs):
    cfg = dict(
        type='Shared2FCBBoxHead',
        in_channels=4,
        fc_out_channels=8,
        roi_feat_size=2,
        num_classes=C)
    cfg.update(kwargs)
    stock = MODELS.build(cfg)
    missing, unexpected = stock.load_state_dict(
        head.state_dict(), strict=False)
    assert not missing and set(unexpected) == {'pems.weight', 'pems.bias'}
    return stock


def _roi_feats(n=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, 2, 2, generator=g)


def _pems_nonzero(head):
    with torch.no_grad():
        head.pems.weight.normal_(0, 0.5)
        head.pems.bias.normal_(0, 0.5)


def test_training_output_is_classifier_then_pem_columns():
    head = _head().train()
    stock = _stock_like(head).train()
    x = _roi_feats()
    out, bbox = head(x)
    assert out.shape == (10, C + 1 + 2 * C)
    cls_score, bbox_ref = stock(x)
    assert torch.equal(out[:, :C + 1], cls_score)
    assert torch.equal(bbox, bbox_ref)
    # The PEMs read the input of fc_cls (the shared-FC output).
    captured = head._forward_with_feats(x)[2]
    assert torch.equal(out[:, C + 1:], head.pems(captured))
    assert captured.shape == (10, 8)


def test_eval_output_keeps_background_and_is_the_npe_correction():
    head = _head(scale_factor=0.7).eval()
    _pems_nonzero(head)
    stock = _stock_like(head).eval()
    x = _roi_feats()
    z, _ = stock(x)
    got, _ = head(x)
    feats = head._forward_with_feats(x)[2]
    eta = npe_estimate(head.pem_outputs(feats).unbind(1), -1)
    torch.testing.assert_close(got, foreground_logit_adjust(z, 0.7 * eta))
    p, q = F.softmax(z, 1), F.softmax(got, 1)
    torch.testing.assert_close(q[:, -1], p[:, -1])
    assert not torch.allclose(q[:, :-1], p[:, :-1])


@pytest.mark.parametrize('kwargs', [dict(scale_factor=0.), dict(num_pems=0)])
def test_alpha_zero_is_the_stock_head_bit_for_bit(kwargs):
    head = _head(**kwargs).eval()
    if head.num_pems:
        _pems_nonzero(head)
    stock = _stock_like(head) if head.num_pems else None
    if stock is None:
        stock = MODELS.build(
            dict(
                type='Shared2FCBBoxHead',
                in_channels=4,
                fc_out_channels=8,
                roi_feat_size=2,
                num_classes=C))
        stock.load_state_dict(head.state_dict())
    x = _roi_feats()
    for a, b in zip(head(x), stock.eval()(x)):
        assert torch.equal(a, b)


def test_owl_loss_closed_form_and_zero_weight_on_background():
    head = _head().train()
    x = _roi_feats()
    labels = torch.tensor([0, 1, 4, 5, 5, 5, 2, 5, 5, 3])
    out, bbox = head(x)
    rois = torch.zeros(10, 5)
    args = (torch.ones(10), torch.zeros(10, 4), torch.zeros(10, 4))
    losses = head.loss(out, bbox, rois, labels, *args)
    pem = out[:, C + 1:].reshape(10, 2, C)
    fg = labels < C
    # sum over PEMs, mean over foreground RoIs; sign -1: softplus(g[y]).
    want = sum(
        F.softplus(pem[fg, k].gather(1, labels[fg, None])).sum()
        for k in range(2)) / fg.sum()
    torch.testing.assert_close(losses['loss_npe'], want)
    # The stock losses of the plain logits are untouched.
    stock = _stock_like(head)
    ref = stock.loss(out[:, :C + 1], bbox, rois, labels, *args)
    for key in ('loss_cls', 'acc', 'loss_bbox'):
        torch.testing.assert_close(losses[key], ref[key])
    # Background RoIs: no loss whatever their PEM outputs, no gradient.
    pem_out = out[:, C + 1:].detach().clone().requires_grad_()
    moved = pem_out.detach().clone()
    moved[~fg] += 100.
    loss = head.pem_loss(pem_out.reshape(10, 2, C), labels, torch.ones(10))
    loss_moved = head.pem_loss(moved.reshape(10, 2, C), labels, torch.ones(10))
    torch.testing.assert_close(loss, loss_moved)
    grad, = torch.autograd.grad(loss, pem_out)
    assert torch.all(grad[~fg] == 0) and torch.any(grad[fg] != 0)


def test_no_foreground_roi_gives_zero_loss_with_a_graph():
    head = _head().train()
    out, bbox = head(_roi_feats())
    labels = torch.full((10, ), C)
    loss = head.pem_loss(out[:, C + 1:].reshape(10, 2, C), labels,
                         torch.ones(10))
    assert loss.item() == 0 and loss.requires_grad


def test_seesaw_classifier_keeps_its_objectness():
    head = _head(
        scale_factor=1.0,
        cls_predictor_cfg=dict(type='NormedLinear', tempearture=20),
        loss_cls=dict(type='SeesawLoss', num_classes=C)).eval()
    _pems_nonzero(head)
    assert head.classifier_kind == 'seesaw' and head.cls_channels == C + 2
    x = _roi_feats()
    got, _ = head(x)
    stock = _stock_like(
        head,
        cls_predictor_cfg=dict(type='NormedLinear', tempearture=20),
        loss_cls=dict(type='SeesawLoss', num_classes=C)).eval()
    z, _ = stock(x)
    act = head.loss_cls.get_activation
    torch.testing.assert_close(act(got)[:, -1], act(z)[:, -1])
    assert not torch.allclose(act(got), act(z))


@pytest.mark.parametrize('loss, match', [
    (dict(type='CrossEntropyLoss', use_sigmoid=True), 'sigmoid classifier'),
    (dict(type='BalancedSigmoidRoILoss'), 'sigmoid classifier'),
    (dict(type='PostHocLARoILoss'), 'correct the prior twice'),
])
def test_heads_that_cannot_carry_a_pem_are_refused(loss, match):
    with pytest.raises(TypeError, match=match):
        _head(loss_cls=loss)


def test_balanced_softmax_classifier_cannot_carry_a_pem():
    """Balanced Softmax removes the prior in training; NPE-LA on top would
    remove it twice, as post-hoc LA on top would."""
    with pytest.raises(TypeError, match='remove it a second time'):
        _head(loss_cls=dict(type='BalancedSoftmaxRoILoss'))


def test_balanced_softmax_is_allowed_without_pems():
    """A head (an NPECascadeRoIHead stage) with num_pems=0 removes the
    prior once, in training: its logits are the stock head's."""
    loss = dict(type='BalancedSoftmaxRoILoss', class_counts=[1.] * C)
    head = _head(loss_cls=loss, num_pems=0).eval()
    stock = MODELS.build(
        dict(
            type='Shared2FCBBoxHead',
            in_channels=4,
            fc_out_channels=8,
            roi_feat_size=2,
            num_classes=C,
            loss_cls=loss)).eval()
    stock.load_state_dict(head.state_dict())
    x = torch.randn(3, 4, 2, 2)
    for a, b in zip(head(x), stock(x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_pems=-1), 'num_pems must be an integer >= 0'),
    (dict(scale_factor=-1.), 'scale_factor must be a finite number >= 0'),
    (dict(scale_factor=float('nan')), 'scale_factor must be a finite'),
    (dict(sign=0), 'sign must be -1 or \\+1'),
    (dict(pem_loss_weight=-2), 'pem_loss_weight must be a number >= 0'),
    (dict(pem_init_std=0), 'pem_init_std must be a number > 0'),
    (dict(with_cls=False), 'needs a classifier'),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _head(**kwargs)


# Whole detectors ------------------------------------------------------------


def _npe_detector(num_pems=1, scale_factor=0.0, **kwargs):
    cfg = tiny_detector_cfg(
        bbox_head=dict(
            type='NPEShared2FCBBoxHead',
            num_pems=num_pems,
            scale_factor=scale_factor),
        **kwargs)
    return build_detector(cfg)


@pytest.mark.parametrize('kwargs', [dict(), dict(with_mask=True)])
def test_stock_detector_state_loads_and_alpha_zero_predicts_identically(
        kwargs):
    torch.manual_seed(0)
    stock = build_detector(tiny_detector_cfg(**kwargs)).eval()
    npe = _npe_detector(**kwargs).eval()
    missing, unexpected = npe.load_state_dict(stock.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == [
        'roi_head.bbox_head.pems.bias', 'roi_head.bbox_head.pems.weight'
    ]
    batch = random_det_batch(with_mask=kwargs.get('with_mask', False))
    with torch.no_grad():
        _pems_nonzero(npe.roi_head.bbox_head)
        a = npe.test_step(copy.deepcopy(batch))
        b = stock.test_step(copy.deepcopy(batch))
        npe.roi_head.bbox_head.scale_factor = 2.0
        c = npe.test_step(copy.deepcopy(batch))
    for x, y in zip(a, b):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(x.pred_instances[key], y.pred_instances[key])
    assert any(
        not torch.equal(x.pred_instances.scores, y.pred_instances.scores)
        for x, y in zip(c, b))


def test_joint_training_reaches_the_backbone():
    torch.manual_seed(0)
    model = _npe_detector(num_pems=2).train()
    logs = model(
        **model.data_preprocessor(random_det_batch(), True), mode='loss')
    assert 'loss_npe' in logs
    logs['loss_npe'].backward()
    head = model.roi_head.bbox_head
    assert head.pems.weight.grad.abs().sum() > 0
    # No detach: the PEM loss trains the shared FCs and the backbone too.
    assert head.shared_fcs[0].weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    # ... but not the classifier: the OWL loss reads the PEMs only.
    grad = head.fc_cls.weight.grad
    assert grad is None or not grad.any()


def test_frozen_training_moves_only_the_pems():
    torch.manual_seed(0)
    model = _npe_detector(num_pems=1)
    hook = FrozenBackboneHook(modules=[
        'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
        'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg'
    ])
    runner = type('R', (), dict(model=model))()
    hook.before_train(runner)
    before = copy.deepcopy(model.state_dict())
    wrapper = OptimWrapper(
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                        lr=0.1))
    for i in range(2):
        model.train()
        hook.before_train_iter(runner, i)
        model.train_step(random_det_batch(seed=i), wrapper)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {
        'roi_head.bbox_head.pems.weight', 'roi_head.bbox_head.pems.bias'
    }


def test_cascade_rcnn_with_npe_heads_trains_and_keeps_alpha_zero():
    torch.manual_seed(0)
    stock = build_detector(tiny_detector_cfg(cascade=True)).eval()
    npe = _npe_detector(cascade=True).eval()
    npe.load_state_dict(stock.state_dict(), strict=False)
    batch = random_det_batch()
    with torch.no_grad():
        for head in npe.roi_head.bbox_head:
            _pems_nonzero(head)
        a = npe.test_step(copy.deepcopy(batch))
        b = stock.test_step(copy.deepcopy(batch))
    for x, y in zip(a, b):
        assert torch.equal(x.pred_instances.scores, y.pred_instances.scores)
    npe.train()
    logs = npe(**npe.data_preprocessor(batch, True), mode='loss')
    assert {'s0.loss_npe', 's1.loss_npe', 's2.loss_npe'} <= set(logs)
    total, _ = npe.parse_losses(logs)
    assert torch.isfinite(total)


def _refined(model, batch, refine=None):
    """``_refine_roi`` of a cascade on the batch's ground-truth boxes."""
    from mmdet.structures.bbox import bbox2roi
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    x = model.extract_feat(data['inputs'])
    boxes = [s.gt_instances.bboxes for s in data['data_samples']]
    metas = [s.metainfo for s in data['data_samples']]
    refine = refine or model.roi_head._refine_roi
    return refine(x, bbox2roi(boxes), metas, tuple(len(b) for b in boxes))


def test_npe_cascade_roi_head_corrects_the_stage_average_once():
    torch.manual_seed(0)
    stock = build_detector(tiny_detector_cfg(cascade=True)).eval()
    npe = _npe_detector(
        scale_factor=0.8, cascade=True,
        roi_head_type='NPECascadeRoIHead').eval()
    per_stage = _npe_detector(scale_factor=0.8, cascade=True).eval()
    npe.load_state_dict(stock.state_dict(), strict=False)
    with torch.no_grad():
        for head in npe.roi_head.bbox_head:
            _pems_nonzero(head)
    per_stage.load_state_dict(npe.state_dict())
    batch = random_det_batch()
    with torch.no_grad():
        _, got, _ = _refined(npe, batch)
        _, ref, _ = _refined(stock, batch)
        _, approx, _ = _refined(per_stage, batch)
        # The mean correction of the stages, on the stages' RoIs.
        corrections = []
        for head in npe.roi_head.bbox_head:
            head.collected_corrections = corrections
        # The stock refinement, the stages' corrections collected.
        _refined(npe, batch,
                 super(type(npe.roi_head), npe.roi_head)._refine_roi)
        for head in npe.roi_head.bbox_head:
            head.collected_corrections = None
    assert len(corrections) == 3
    mean = (sum(corrections) / 3).split([len(r) for r in ref])
    for g, r, a, c in zip(got, ref, approx, mean):
        p, q = F.softmax(r, 1), F.softmax(g, 1)
        torch.testing.assert_close(q[:, -1], p[:, -1])
        torch.testing.assert_close(q[:, :-1], (1 - p[:, -1:]) *
                                   F.softmax(r[:, :-1] - c, 1))
        # The stock cascade averages corrected logits: p_bg drifts.
        assert not torch.allclose(F.softmax(a, 1)[:, -1], p[:, -1])


def _stage_corrections(model, batch):
    """Each stage's ``eta_s`` on the cascade's RoIs (all alphas 1)."""
    alphas = [head.scale_factor for head in model.roi_head.bbox_head]
    corrections = []
    try:
        for head in model.roi_head.bbox_head:
            head.scale_factor = 1.0
            head.collected_corrections = corrections
        with torch.no_grad():
            _refined(model, batch,
                     super(type(model.roi_head), model.roi_head)._refine_roi)
    finally:
        for head, alpha in zip(model.roi_head.bbox_head, alphas):
            head.scale_factor = alpha
            head.collected_corrections = None
    return corrections


def _npe_cascade(alphas, num_pems=(1, 1, 1)):
    cfg = tiny_detector_cfg(cascade=True, roi_head_type='NPECascadeRoIHead')
    for head, alpha, k in zip(cfg.roi_head.bbox_head, alphas, num_pems):
        head.update(
            type='NPEShared2FCBBoxHead', num_pems=k, scale_factor=alpha)
    return build_detector(cfg).eval()


@pytest.mark.parametrize('alphas, num_pems', [
    ((0.0, 1.0, 1.0), (1, 1, 1)),
    ((1e-6, 1.0, 1.0), (1, 1, 1)),
    ((0.3, 1.0, 0.5), (1, 1, 1)),
    ((1.0, 1.0, 1.0), (0, 1, 1)),
])
def test_npe_cascade_roi_head_divides_by_the_number_of_stages(
        alphas, num_pems):
    """The stages' logits are averaged over all three stages, so is the
    correction: ``sum_s alpha_s * eta_s / 3``, a stage at alpha = 0 or
    without PEMs contributing zero (no jump as an alpha crosses 0)."""
    torch.manual_seed(0)
    full = _npe_cascade((1.0, 1.0, 1.0))
    with torch.no_grad():
        for head in full.roi_head.bbox_head:
            _pems_nonzero(head)
    model = _npe_cascade(alphas, num_pems)
    model.load_state_dict(full.state_dict(), strict=False)
    stock = build_detector(tiny_detector_cfg(cascade=True)).eval()
    stock.load_state_dict(full.state_dict(), strict=False)
    batch = random_det_batch()
    etas = _stage_corrections(full, batch)
    assert len(etas) == 3
    used = [a * (k > 0) for a, k in zip(alphas, num_pems)]
    want = (sum(a * eta for a, eta in zip(used, etas)) / 3)
    with torch.no_grad():
        _, got, _ = _refined(model, batch)
        _, ref, _ = _refined(stock, batch)
    want = want.split([len(r) for r in ref])
    for g, r, c in zip(got, ref, want):
        p, q = F.softmax(r, 1), F.softmax(g, 1)
        torch.testing.assert_close(q[:, -1], p[:, -1])
        torch.testing.assert_close(q[:, :-1], (1 - p[:, -1:]) *
                                   F.softmax(r[:, :-1] - c, 1))


def test_npe_cascade_pem_loss_is_exempt_from_stage_loss_weights():
    """mmdet scales stage s's losses by stage_loss_weights[s]; the PEM loss
    keeps its own weight (pem_loss_weight) in every stage."""
    torch.manual_seed(0)
    npe = _npe_detector(
        num_pems=1, cascade=True, roi_head_type='NPECascadeRoIHead').train()
    stock = _npe_detector(num_pems=1, cascade=True).train()
    stock.load_state_dict(npe.state_dict())
    batch = random_det_batch()
    logs = []
    for model in (npe, stock):
        torch.manual_seed(1)  # the same RoIs sampled for both
        logs.append(model(**model.data_preprocessor(batch, True), mode='loss'))
    got, ref = logs
    assert set(got) == set(ref)
    for stage, weight in enumerate(npe.roi_head.stage_loss_weights):
        key = f's{stage}.loss_npe'
        torch.testing.assert_close(got[key] * weight, ref[key])
        # Every other loss keeps mmdet's stage weighting.
        for name in ('loss_cls', 'loss_bbox'):
            torch.testing.assert_close(got[f's{stage}.{name}'],
                                       ref[f's{stage}.{name}'])
    assert npe.roi_head.stage_loss_weights[1] != 1
    assert not torch.allclose(got['s1.loss_npe'], ref['s1.loss_npe'])


def test_npe_cascade_roi_head_refuses_plain_stages():
    cfg = tiny_detector_cfg(cascade=True, roi_head_type='NPECascadeRoIHead')
    cfg.roi_head.bbox_head[0].type = 'NPEShared2FCBBoxHead'
    with pytest.raises(
            TypeError,
            match=r'every stage needs an NPE box '
            r'head.*bbox_head\[1\]'):
        build_detector(cfg)


def test_npe_cascade_refuses_balanced_softmax_beside_pems():
    """A Balanced Softmax stage's logits are already prior-free; averaged
    with PEM-carrying stages, the mean correction would remove the prior a
    second time. Balanced Softmax in every stage without PEMs is fine."""
    cfg = tiny_detector_cfg(cascade=True, roi_head_type='NPECascadeRoIHead')
    balanced = dict(
        type='BalancedSoftmaxRoILoss', class_counts=[1.] * NUM_CLASSES)
    for head, k in zip(cfg.roi_head.bbox_head, (0, 1, 1)):
        head.type = 'NPEShared2FCBBoxHead'
        head.num_pems = k
    cfg.roi_head.bbox_head[0]['loss_cls'] = dict(balanced)
    with pytest.raises(TypeError, match=r'stages \[0\].*second time'):
        build_detector(cfg)
    for head in cfg.roi_head.bbox_head:
        head.num_pems = 0
        head['loss_cls'] = dict(balanced)
    build_detector(cfg)


def test_npe_head_is_registered_in_mmdet():
    assert MODELS.get('NPEShared2FCBBoxHead') is NPEShared2FCBBoxHead
