"""Post-hoc LA classification head: ``fc(h) - tau * eta`` with the fixed,
centred log-prior, NPE-LA's operation; a LinearClsHead checkpoint loads;
training sees the plain logits."""
import math

import pytest
import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import LogitAdjustClsHead
from mmnpe.functional import log_prior

COUNTS = [500, 100, 30, 5, 1]


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='LogitAdjustClsHead',
        num_classes=5,
        in_channels=8,
        class_counts=COUNTS)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    for p in head.fc.parameters():
        nn.init.normal_(p, std=0.5)
    return head


def eta():
    lp = log_prior(torch.tensor(COUNTS, dtype=torch.float64))
    return (lp - lp.mean()).float()


@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_forward_is_exactly_fc_minus_tau_eta(tau):
    head = build(tau=tau)
    assert head.scale_factor == tau == head.tau
    h = torch.randn(6, 8)
    z = head.fc(h)
    out = head((h, ))
    assert torch.equal(out, z - tau * eta().expand(6, 5))
    lp = log_prior(torch.tensor(COUNTS, dtype=torch.float64)).float()
    torch.testing.assert_close(out.softmax(1), (z - tau * lp).softmax(1))
    est = head.estimate_prior(h)
    assert est.shape == (6, 5) and est.sum(1).abs().max() < 1e-5
    preds = head.predict((h, ))
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), out.softmax(1))


def test_tau_zero_and_stock_checkpoint_are_linear_cls_head():
    head = build(tau=0.0)
    stock = LinearClsHead(num_classes=5, in_channels=8)
    missing, unexpected = head.load_state_dict(
        stock.state_dict(), strict=False)
    assert missing == ['class_counts'] and not unexpected
    assert head.class_counts.tolist() == COUNTS  # kept, not zeroed
    h = torch.randn(3, 8)
    assert torch.equal(head((h, )), stock((h, )))


def test_loss_is_the_plain_ce_of_linear_cls_head():
    head = build(tau=1.0)
    stock = LinearClsHead(num_classes=5, in_channels=8)
    stock.load_state_dict(head.state_dict(), strict=False)
    h = torch.randn(4, 8)
    labels = [0, 1, 4, 2]
    samples = [DataSample().set_gt_label(y) for y in labels]
    torch.testing.assert_close(
        head.loss((h, ), samples)['loss'],
        nn.functional.cross_entropy(stock((h, )), torch.tensor(labels)))


def test_prediction_shifts_towards_rare_classes():
    head = build(tau=1.0)
    nn.init.zeros_(head.fc.weight)
    nn.init.zeros_(head.fc.bias)
    pred = head.predict((torch.randn(2, 8), ))
    assert [int(p.pred_label) for p in pred] == [4, 4]


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, None])
def test_bad_tau_and_counts(bad):
    with pytest.raises(ValueError, match='tau must be a finite number >= 0'):
        build(tau=bad)
    with pytest.raises(ValueError, match='num_classes=5 entries, got 4'):
        build(class_counts=[1, 2, 3, 4])
    with pytest.raises(ValueError, match=r'class_counts\[3\] must be >= 0'):
        build(class_counts=[1, 2, 3, -4, 5])


def test_unset_counts_fail_at_predict_naming_the_fix():
    head = build(class_counts=None)
    assert isinstance(head, LogitAdjustClsHead)
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        head.predict((torch.randn(2, 8), ))
