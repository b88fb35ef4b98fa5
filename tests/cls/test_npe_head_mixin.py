"""The three NPE heads share the mixin: the same maths on each stock head's
``pre_logits`` and output layer."""
import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import (NPEClsHead, NPEHeadMixin, NPEStackedLinearClsHead,
                       NPEVisionTransformerClsHead)

HEADS = {
    'NPEClsHead': dict(in_channels=8),
    'NPEVisionTransformerClsHead': dict(in_channels=8, hidden_dim=6),
    'NPEStackedLinearClsHead': dict(in_channels=8, mid_channels=[7, 6]),
}
FINAL = {
    'NPEClsHead': 'fc',
    'NPEVisionTransformerClsHead': 'layers.head',
    'NPEStackedLinearClsHead': 'layers.2.fc',
}


def build(name, **kwargs):
    torch.manual_seed(0)
    head = MODELS.build(
        dict(type=name, num_classes=5, **HEADS[name], **kwargs))
    head.init_weights()
    return head


def stock_of(head):
    cfg = {k: v for k, v in HEADS[type(head).__name__].items()}
    stock = MODELS.build(
        dict(type=type(head).stock_head.__name__, num_classes=5, **cfg))
    missing, unexpected = stock.load_state_dict(
        head.state_dict(), strict=False)
    assert not missing
    assert set(unexpected) <= {'pems.weight', 'pems.bias'}
    return stock.eval()


def test_registered_variants_and_their_stock_heads():
    assert {
        k: v.__name__
        for k, v in NPEHeadMixin.npe_heads.items()
    } == {
        'LinearClsHead': 'NPEClsHead',
        'VisionTransformerClsHead': 'NPEVisionTransformerClsHead',
        'StackedLinearClsHead': 'NPEStackedLinearClsHead'
    }
    assert NPEClsHead.stock_head.__name__ == 'LinearClsHead'
    assert issubclass(NPEVisionTransformerClsHead,
                      NPEVisionTransformerClsHead.stock_head)
    assert issubclass(NPEStackedLinearClsHead,
                      NPEStackedLinearClsHead.stock_head)


@pytest.mark.parametrize('name', list(HEADS))
def test_pems_read_what_the_output_layer_reads(name):
    head = build(name, num_pems=3)
    final = head.final_linear
    assert head.final_linear_name == FINAL[name]
    assert head.pems.in_features == final.in_features
    assert head.pems.out_features == 3 * 5
    # Small normal init after the stock init (the ViT head's init_cfg sets
    # every nn.Linear to 0, the PEMs included, before the mixin re-inits).
    assert 0 < head.pems.weight.std() < 0.002
    assert (head.pems.bias == 0).all()


@pytest.mark.parametrize('name', list(HEADS))
def test_zero_pems_is_the_stock_head_and_pems_correct_its_logits(name):
    feats = (torch.randn(6, 8), )
    plain = build(name, num_pems=0).eval()
    for p in plain.parameters():
        nn.init.normal_(p, std=0.5)
    assert not hasattr(plain, 'pems')
    with torch.no_grad():
        torch.testing.assert_close(plain(feats), stock_of(plain)(feats))

    head = build(name, num_pems=4, scale_factor=0.5).eval()
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        h = head.pre_logits(feats)
        g = head.pems(h).view(6, 4, 5)
        eta = -g.mean(1)
        eta = eta - eta.mean(1, keepdim=True)
        torch.testing.assert_close(
            head(feats),
            stock_of(head)(feats) - 0.5 * eta)
        torch.testing.assert_close(head.estimate_prior(h), eta)


@pytest.mark.parametrize('name', list(HEADS))
def test_loss_is_the_stock_loss_plus_summed_owl(name):
    head = build(name, num_pems=2, pem_loss_weight=0.5)
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    feats = (torch.randn(4, 8), )
    labels = torch.tensor([0, 3, 4, 1])
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    losses = head.loss(feats, samples)
    h = head.pre_logits(feats)
    ce = nn.functional.cross_entropy(head.final_linear(h), labels)
    g = head.pems(h).view(4, 2, 5)
    owl = nn.functional.softplus(
        g.gather(2,
                 labels.view(4, 1, 1).expand(4, 2, 1))).sum(1).mean()
    torch.testing.assert_close(losses['loss'], ce)
    torch.testing.assert_close(losses['loss_npe'], 0.5 * owl)


@pytest.mark.parametrize('name', list(HEADS))
def test_fuse_is_one_linear_with_the_same_predictions(name):
    head = build(name, num_pems=3).eval()
    for p in head.parameters():
        nn.init.normal_(p, std=0.5)
    feats = (torch.randn(16, 8), )
    with torch.no_grad():
        fused = head.fuse()(head.pre_logits(feats))
        ref = head(feats)
    centre = lambda z: z - z.mean(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(centre(fused), centre(ref))


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_pems=-1), 'num_pems must be an integer >= 0, got -1'),
    (dict(num_classes=1), 'num_classes must be an int > 1'),
    (dict(in_channels=[8, 16]), r'in_channels must be an int > 0 .* got '
     r'\[8, 16\]'),
    (dict(pem_loss_weight=-1.), 'pem_loss_weight must be a number >= 0'),
    (dict(pem_init_std=0), 'pem_init_std must be a number > 0, got 0'),
])
def test_bad_arguments_name_the_head_and_the_value(kwargs, message):
    cfg = dict(
        type='NPEVisionTransformerClsHead', num_classes=5, in_channels=8)
    cfg.update(kwargs)
    with pytest.raises(
            ValueError, match=f'NPEVisionTransformerClsHead: {message}'):
        MODELS.build(cfg)


def test_unknown_arguments_point_to_no_head_when_none_takes_them():
    with pytest.raises(
            TypeError,
            match=r"got \['distillation'\]: NPE versions exist for "
            r'LinearClsHead -> NPEClsHead, StackedLinearClsHead -> '
            r'NPEStackedLinearClsHead, VisionTransformerClsHead -> '
            r'NPEVisionTransformerClsHead only'):
        MODELS.build(
            dict(
                type='NPEClsHead',
                num_classes=5,
                in_channels=8,
                distillation=True))


def test_soft_labels_are_refused():
    head = build('NPEVisionTransformerClsHead')
    sample = DataSample().set_gt_label(1).set_gt_score(torch.rand(5))
    with pytest.raises(ValueError, match='needs hard labels'):
        head.loss((torch.randn(1, 8), ), [sample])
