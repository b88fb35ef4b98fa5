import pytest
import torch
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain.registry import MODELS as CLS_MODELS
from mmseg.registry import MODELS as SEG_MODELS

from mmnpe.functional import one_way_logistic_loss
from mmnpe.seg import OneWayLogisticLoss


@pytest.mark.parametrize('registry', [SEG_MODELS, CLS_MODELS, ROOT_MODELS])
def test_built_from_mmseg_and_mmpretrain_registries(registry):
    loss = registry.build(dict(type='OneWayLogisticLoss', sign=1))
    assert isinstance(loss, OneWayLogisticLoss)
    assert loss.sign == 1 and loss.loss_name == 'loss_npe'


def test_mean_is_over_non_ignored_pixels_and_weighted():
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = 255
    loss_fn = OneWayLogisticLoss(loss_weight=2.0, ignore_index=255)
    raw = one_way_logistic_loss(pred, target, ignore_index=255)
    valid = (target != 255).sum()
    torch.testing.assert_close(loss_fn(pred, target), 2.0 * raw.sum() / valid)
    torch.testing.assert_close(
        loss_fn(pred, target, reduction_override='sum'), 2.0 * raw.sum())
    assert loss_fn(pred, target, reduction_override='none').shape == (2, 4, 4)
    weight = torch.rand(2, 4, 4)
    torch.testing.assert_close(
        loss_fn(pred, target, weight=weight, avg_factor=10.),
        2.0 * (raw * weight).sum() / 10.,
        rtol=1e-5,
        atol=1e-6)


def test_classification_input_and_call_time_ignore_index():
    pred = torch.zeros(4, 5)
    target = torch.tensor([0, 1, -100, 4])
    loss = OneWayLogisticLoss()(pred, target, ignore_index=-100)
    torch.testing.assert_close(loss, torch.log(torch.tensor(2.)))


def test_all_ignored_batch_gives_zero_loss_no_nan_no_gradient():
    pred = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    loss = OneWayLogisticLoss(ignore_index=255)(pred, target)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert (pred.grad == 0).all()


@pytest.mark.parametrize('kwargs,match', [
    (dict(sign=0), r'sign must be -1 or \+1, got 0'),
    (dict(sign=2), r'sign must be -1 or \+1, got 2'),
    (dict(reduction='avg'), "reduction must be one of"),
    (dict(loss_name='npe'), "loss_name must start with 'loss_'"),
])
def test_bad_config_is_refused_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SEG_MODELS.build(dict(type='OneWayLogisticLoss', **kwargs))


def test_label_out_of_range_names_the_value():
    with pytest.raises(ValueError, match='label 9'):
        OneWayLogisticLoss(ignore_index=255)(torch.zeros(1, 3, 2, 2),
                                             torch.tensor([[[0, 9], [1,
                                                                     255]]]))
