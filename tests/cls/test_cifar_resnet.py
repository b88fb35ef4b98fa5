import pytest
import torch
from mmpretrain.registry import MODELS

from mmnpe.cls import CifarResNet


def test_resnet32_has_option_a_parameter_count():
    model = CifarResNet(depth=32)
    assert sum(p.numel() for p in model.parameters()) == 463_504
    head = torch.nn.Linear(64, 10)
    total = 463_504 + sum(p.numel() for p in head.parameters())
    assert total == 464_154  # "0.46 M" of the literature
    # Option A: the only convs are 3x3 (no 1x1 projection shortcuts).
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 31 and all(c.kernel_size == (3, 3) for c in convs)


@pytest.mark.parametrize('depth', [20, 32, 44, 56, 110])
def test_depths_and_shapes(depth):
    model = CifarResNet(depth=depth, out_indices=(0, 1, 2))
    n = (depth - 2) // 6
    assert [len(s) for s in model.stages] == [n] * 3
    outs = model(torch.randn(2, 3, 32, 32))
    assert [o.shape for o in outs] == [(2, 16, 32, 32), (2, 32, 16, 16),
                                       (2, 64, 8, 8)]


@pytest.mark.parametrize('size', [8, 28, 32])
def test_other_input_sizes_and_channels_with_mmpretrain_neck(size):
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='CifarResNet', depth=20, in_channels=1),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))
    feats = model.extract_feat(torch.randn(2, 1, size, size))
    assert feats[-1].shape == (2, 64)


def test_gradients_reach_every_parameter():
    model = CifarResNet(depth=20)
    model(torch.randn(2, 3, 32, 32))[-1].sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match='depth must be one of'):
        CifarResNet(depth=18)
    with pytest.raises(ValueError, match='out_indices'):
        CifarResNet(out_indices=(3, ))


def test_frozen_stages_stay_frozen_in_train_mode():
    model = CifarResNet(depth=20, frozen_stages=1).train()
    assert not model.bn1.training and not model.stages[0][0].bn1.training
    assert model.stages[1][0].bn1.training
    assert not any(p.requires_grad for p in model.stages[0].parameters())
