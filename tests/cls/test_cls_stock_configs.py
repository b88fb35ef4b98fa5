"""NPE heads in mmpretrain's own configs, as the docs tell a user to
(docs/advanced_guides/supported_heads.md).

Each case takes a stock config from the installed package
(``mmpretrain/.mim/configs``) and adds the documented lines: ``custom_imports``
and ``model.head.type`` = the NPE version of the stock head with
``num_pems`` (ViT configs also drop Mixup / CutMix, ``train_cfg=None``: the
one-way logistic loss needs hard labels). The NPE model differs from the
stock one in those keys only; a stock state dict loads into it with only
``head.pems.*`` missing; ``scale_factor = 0`` predicts exactly the stock
logits, ``scale_factor = 1`` the stock logits minus the PEMs' estimate; it
trains (CE + OWL, gradient into the backbone); and fusing it gives a stock
model of the stock head type with the same predictions. Heads without an NPE
version are refused when built, naming the head to use, or at the first
forward for DeiT's distilled tokens. Tiny inputs (32x32), ViT shrunk.
"""
import os.path as osp

import mmpretrain
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.cls import fuse_npe_classifier

MIM = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs')
SMALL_VIT = {
    'model.backbone.arch':
    dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128),
    'model.backbone.img_size':
    32,
    'model.head.in_channels':
    64,
}

# id: (stock config, NPE head, extra model keys of the documented lines,
#      test-only shrink)
SUPPORTED = {
    'LinearClsHead, ResNet-18 CIFAR-10':
    ('resnet/resnet18_8xb16_cifar10.py', 'NPEClsHead', {}, {}),
    'LinearClsHead, ResNet-50 ImageNet':
    ('resnet/resnet50_8xb32_in1k.py', 'NPEClsHead', {}, {}),
    'VisionTransformerClsHead with hidden_dim, ViT-B/16':
    ('vision_transformer/vit-base-p16_64xb64_in1k.py',
     'NPEVisionTransformerClsHead', dict(train_cfg=None),
     dict(SMALL_VIT, **{'model.head.hidden_dim': 128})),
    'VisionTransformerClsHead, DeiT-tiny': ('deit/deit-tiny_4xb256_in1k.py',
                                            'NPEVisionTransformerClsHead',
                                            dict(train_cfg=None), SMALL_VIT),
    'StackedLinearClsHead, MobileNetV3-S CIFAR-10':
    ('mobilenet_v3/mobilenet-v3-small_8xb16_cifar10.py',
     'NPEStackedLinearClsHead', {}, {}),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threads only add overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def npe_config(tmp_path, stock, head_type, model_keys, num_pems=2):
    """The documented lines on top of a stock config."""
    model = dict(model_keys, head=dict(type=head_type, num_pems=num_pems))
    path = tmp_path / 'npe_config.py'
    path.write_text(f"_base_ = 'mmpretrain::{stock}'\n"
                    'custom_imports = dict(imports=[\'mmnpe\'], '
                    'allow_failed_imports=False)\n'
                    f'model = {model!r}\n')
    return Config.fromfile(str(path))


def shrink(cfg, options):
    """Test-only: set dotted keys, replacing (ViT's ``arch`` string becomes
    a dict of smaller sizes)."""
    for key, value in options.items():
        *parents, last = key.split('.')
        node = cfg
        for name in parents:
            node = node[name]
        node[last] = value


def without(model_cfg, *keys):
    return {k: v for k, v in model_cfg.items() if k not in keys}


def eta_of(head, pre_logits):
    g = head.pems(pre_logits).view(len(pre_logits), head.num_pems, -1)
    eta = -g.mean(1)  # sign -1
    return eta - eta.mean(1, keepdim=True)


def centred(z):
    return z - z.mean(1, keepdim=True)


@pytest.mark.parametrize('case', list(SUPPORTED))
def test_npe_head_in_a_stock_config(case, tmp_path):
    stock_path, head_type, model_keys, small = SUPPORTED[case]
    stock_cfg = Config.fromfile(osp.join(MIM, stock_path))
    cfg = npe_config(tmp_path, stock_path, head_type, model_keys)
    stock_head = stock_cfg.model.head.type
    assert MODELS.get(head_type).stock_head.__name__ == stock_head

    # Only the documented keys differ.
    skip = ('_scope_', 'head') + tuple(model_keys)
    assert without(cfg.model, *skip) == without(stock_cfg.model, *skip)
    assert without(cfg.model.head, 'type',
                   'num_pems') == without(stock_cfg.model.head, 'type')
    for key, value in model_keys.items():
        assert cfg.model[key] == value

    shrink(cfg, small)
    shrink(stock_cfg, small)
    stock_cfg.model.pop('train_cfg', None)
    cfg.model.pop('_scope_')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    for p in model.head.parameters():  # far from the zero / small init
        nn.init.normal_(p, std=0.1)
    stock = MODELS.build(stock_cfg.model).eval()
    assert type(stock.head).__name__ == stock_head
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing
    assert unexpected == ['head.pems.weight', 'head.pems.bias']
    missing, _ = model.load_state_dict(stock.state_dict(), strict=False)
    assert missing == ['head.pems.weight', 'head.pems.bias']

    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = stock(x, mode='tensor')
        model.head.scale_factor = 0.0
        assert torch.equal(model(x, mode='tensor'), ref)
        model.head.scale_factor = 1.0
        pre_logits = model.head.pre_logits(model.extract_feat(x))
        eta = eta_of(model.head, pre_logits)
        assert eta.abs().max() > 1e-3
        torch.testing.assert_close(model(x, mode='tensor'), ref - eta)
        preds = model.predict(x)
        assert torch.equal(
            torch.stack([p.pred_label for p in preds]).view(-1),
            (ref - eta).argmax(1))

    # Training: CE + OWL; the PEM gradient reaches the backbone.
    model.train()
    labels = torch.arange(4) % model.head.num_classes
    losses = model.loss(x, [DataSample().set_gt_label(int(y)) for y in labels])
    assert set(losses) == {'loss', 'loss_npe'}
    losses['loss_npe'].backward()
    assert model.head.pems.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.backbone.parameters())

    # Deployment: the stock head type, the same predictions.
    model.eval()
    fused_cfg, fused = fuse_npe_classifier(cfg, model.state_dict())
    assert fused_cfg.model.head.type == stock_head
    assert 'custom_imports' not in fused_cfg  # nothing else is mmnpe's
    deployed = MODELS.build(fused_cfg.model).eval()
    deployed.load_state_dict(fused, strict=True)
    with torch.no_grad():
        a, b = deployed(x, mode='tensor'), model(x, mode='tensor')
    torch.testing.assert_close(centred(a), centred(b), atol=1e-5, rtol=0)
    assert torch.equal(a.argmax(1), b.argmax(1))


@pytest.mark.parametrize('stock, head_type, message', [
    ('vision_transformer/vit-base-p16_64xb64_in1k.py', 'NPEClsHead',
     r"NPEClsHead is LinearClsHead with PEMs and takes the arguments of "
     r"LinearClsHead only, got \['hidden_dim'\]: they are arguments of "
     r"VisionTransformerClsHead \(type='NPEVisionTransformerClsHead'\)"),
    ('mobilenet_v3/mobilenet-v3-small_8xb16_cifar10.py', 'NPEClsHead',
     r"got \['act_cfg', 'mid_channels'\]: they are arguments of "
     r"StackedLinearClsHead \(type='NPEStackedLinearClsHead'\)"),
    ('mobilenet_v3/mobilenet-v3-small_8xb16_cifar10.py',
     'NPEVisionTransformerClsHead', r"got \['mid_channels'\]: they are "
     r"arguments of StackedLinearClsHead"),
    ('conformer/conformer-tiny-p16_8xb128_in1k.py', 'NPEClsHead',
     r'NPEClsHead: in_channels must be an int > 0 .* got \[256, 384\]'),
])
def test_other_heads_are_refused_when_built(stock, head_type, message,
                                            tmp_path):
    cfg = npe_config(tmp_path, stock, head_type, {})
    with pytest.raises((TypeError, ValueError), match=message):
        MODELS.build(cfg.model.head)


def test_distilled_deit_is_refused_at_the_first_forward(tmp_path):
    cfg = npe_config(tmp_path, 'deit/deit-tiny-distilled_4xb256_in1k.py',
                     'NPEVisionTransformerClsHead', dict(train_cfg=None))
    shrink(cfg, SMALL_VIT)
    model = MODELS.build(cfg.model).eval()
    with pytest.raises(
            TypeError,
            match=r'NPEVisionTransformerClsHead needs one pooled feature '
            r'\(N, 64\) per image before its classifier, got tuple'):
        model(torch.randn(2, 3, 32, 32), mode='tensor')
