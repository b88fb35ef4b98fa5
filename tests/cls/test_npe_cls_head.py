import math

import pytest
import torch
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import NPEClsHead


def samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='NPEClsHead', num_classes=5, in_channels=8)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def randomise(head):
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    return head


def test_pem_init_small_normal_zero_bias():
    head = build(num_pems=16)
    assert head.pems.weight.shape == (16 * 5, 8)
    assert head.pems.weight.std() < 0.002 and (head.pems.bias == 0).all()


def test_loss_is_ce_plus_summed_owl_logged_separately():
    head = randomise(build(num_pems=3, pem_loss_weight=0.5))
    feats = (torch.randn(4, 8), )
    labels = torch.tensor([0, 1, 4, 2])
    losses = head.loss(feats, samples(labels))
    assert set(losses) == {'loss', 'loss_npe'}
    h = feats[-1]
    ce = nn.functional.cross_entropy(head.fc(h), labels)
    g = head.pems(h).view(4, 3, 5)
    owl = nn.functional.softplus(
        g.gather(2,
                 labels.view(4, 1, 1).expand(4, 3, 1))).squeeze(2)
    torch.testing.assert_close(losses['loss'], ce)
    torch.testing.assert_close(losses['loss_npe'], 0.5 * owl.sum(1).mean())


def test_pem_gradient_reaches_the_features():
    head = build(num_pems=2)
    h = torch.randn(4, 8, requires_grad=True)
    head.loss((h, ), samples([0, 1, 2, 3]))['loss_npe'].backward()
    assert h.grad is not None and h.grad.abs().sum() > 0


def test_predict_is_npe_la():
    head = randomise(build(num_pems=4, scale_factor=1.0))
    h = torch.randn(6, 8)
    g = head.pems(h).view(6, 4, 5)
    eta = -g.mean(1)
    eta = eta - eta.mean(1, keepdim=True)
    expected = head.fc(h) - eta
    torch.testing.assert_close(head((h, )), expected)
    preds = head.predict((h, ))
    assert len(preds) == 6
    assert torch.equal(
        torch.stack([p.pred_label for p in preds]).view(-1),
        expected.argmax(1))


def test_scale_zero_trains_pems_but_predicts_plain():
    head = randomise(build(num_pems=4, scale_factor=0.0))
    h = torch.randn(3, 8)
    torch.testing.assert_close(head((h, )), head.fc(h))
    assert 'loss_npe' in head.loss((h, ), samples([0, 1, 2]))


def test_zero_pems_is_exactly_linear_cls_head():
    ours = MODELS.build(
        dict(type='NPEClsHead', num_classes=5, in_channels=8, num_pems=0))
    stock = LinearClsHead(num_classes=5, in_channels=8)
    torch.manual_seed(0)
    ours.init_weights()
    torch.manual_seed(0)
    stock.init_weights()
    assert set(ours.state_dict()) == set(stock.state_dict())
    for k, v in stock.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v)
    h = (torch.randn(4, 8), )
    s = samples([0, 1, 2, 3])
    assert torch.equal(ours(h), stock(h))
    assert ours.loss(h, s).keys() == stock.loss(h, s).keys()
    torch.testing.assert_close(
        ours.loss(h, s)['loss'],
        stock.loss(h, s)['loss'])


@pytest.mark.parametrize('k', [1, 16])
def test_fused_equals_unfused(k):
    head = randomise(build(num_pems=k, scale_factor=0.7))
    fc = head.fuse()
    h = torch.randn(64, 8)
    ref = head((h, ))
    out = fc(h)
    centre = lambda z: z - z.mean(1, keepdim=True)  # noqa: E731
    assert (centre(out) - centre(ref)).abs().max() < 1e-5
    assert torch.equal(out.argmax(1), ref.argmax(1))


def test_sign_invariance_of_the_prediction():
    a = randomise(build(num_pems=2, sign=-1))
    b = build(num_pems=2, sign=1)
    b.load_state_dict(a.state_dict())
    b.pems.weight.data.neg_()
    b.pems.bias.data.neg_()
    h = (torch.randn(5, 8), )
    torch.testing.assert_close(a(h), b(h))


def test_soft_labels_are_refused():
    head = build(num_pems=1)
    s = [DataSample().set_gt_score(torch.full((5, ), 0.2)) for _ in range(2)]
    with pytest.raises(ValueError, match='hard labels'):
        head.loss((torch.randn(2, 8), ), s)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_pems=-1), 'num_pems must be an integer >= 0, got -1'),
    (dict(num_pems=1.5), 'num_pems must be an integer >= 0, got 1.5'),
    (dict(num_pems='4'), "num_pems must be an integer >= 0, got '4'"),
    (dict(sign=0), r'sign must be -1 or \+1, got 0'),
    (dict(scale_factor=-0.5), 'scale_factor must be a finite number >= 0'),
    (dict(scale_factor=math.nan), 'scale_factor must be a finite number'),
    (dict(pem_loss_weight=-1), 'pem_loss_weight must be a number >= 0'),
    (dict(num_classes=1), 'num_classes must be an int > 1'),
])
def test_bad_config_is_refused_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_registered_class():
    assert isinstance(build(), NPEClsHead)
