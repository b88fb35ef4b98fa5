"""ClassBalancedLoss as a registered module: found from both scopes, the
closed form of Cui et al., plain CE with uniform counts, counts as a buffer,
clear errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmpretrain.models.losses import CrossEntropyLoss as ClsCE
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS as SEG_MODELS

from mmnpe.seg import ClassBalancedLoss

COUNTS = [500, 50, 5]


@pytest.mark.parametrize('registry', [SEG_MODELS, CLS_MODELS, MODELS])
def test_found_from_both_scopes(registry):
    loss = registry.build(dict(type='ClassBalancedLoss', class_counts=[1, 2]))
    assert isinstance(loss, ClassBalancedLoss)
    assert loss.loss_name == 'loss_class_balanced'


def test_closed_form_mean_over_samples():
    torch.manual_seed(0)
    pred = torch.randn(6, 3, requires_grad=True)
    label = torch.tensor([0, 0, 0, 1, 2, 2])
    loss = MODELS.build(
        dict(
            type='ClassBalancedLoss',
            class_counts=COUNTS,
            beta=0.999,
            loss_weight=2.0))
    raw = (1 - 0.999) / (1 - np.power(0.999, np.asarray(COUNTS, float)))
    w = torch.tensor(raw / raw.sum() * 3, dtype=torch.float32)
    ce = F.cross_entropy(pred, label, reduction='none')
    want = 2.0 * (w[label] * ce).sum() / 6
    got = loss(pred, label, avg_factor=6)
    torch.testing.assert_close(got, want)
    got.backward()
    assert torch.isfinite(pred.grad).all()


def test_uniform_counts_and_beta_zero_are_mmpretrain_ce():
    torch.manual_seed(0)
    pred, label = torch.randn(8, 3), torch.randint(0, 3, (8, ))
    ref = ClsCE()(pred, label, avg_factor=8)
    for cfg in (dict(class_counts=[4, 4, 4]),
                dict(class_counts=COUNTS, beta=0.0)):
        loss = MODELS.build(dict(type='ClassBalancedLoss', **cfg))
        torch.testing.assert_close(loss(pred, label, avg_factor=8), ref)


def test_counts_are_a_checkpointed_buffer():
    loss = ClassBalancedLoss(COUNTS)
    assert torch.equal(loss.state_dict()['class_counts'],
                       torch.tensor(COUNTS, dtype=torch.float64))


def test_unset_counts_and_wrong_length_are_clear_errors():
    pred, label = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match='ClassCountsHook'):
        ClassBalancedLoss()(pred, label)
    with pytest.raises(ValueError, match='has 2 entries but'):
        ClassBalancedLoss([3, 1])(pred, label)


@pytest.mark.parametrize('beta', [1.0, -0.5, float('inf')])
def test_bad_beta_refused_when_built(beta):
    with pytest.raises(ValueError, match=r'beta must be a number in \[0, 1\)'):
        MODELS.build(dict(type='ClassBalancedLoss', beta=beta))


def test_zero_count_refused_naming_the_class():
    with pytest.raises(ValueError, match=r'class_counts\[1\] is 0'):
        ClassBalancedLoss([3, 0, 2])
