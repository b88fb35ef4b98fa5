from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import Tensor


class _BasicBlockA(nn.Module):
    """3x3-3x3 basic block with the parameter-free option-A shortcut: the
    identity is subsampled by 2 and zero-padded to the new width."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@MODELS.register_module()
class CifarResNet(BaseBackbone):
    """Option-A CIFAR ResNet of `He et al. 2016
    <https://arxiv.org/abs/1512.03385>`_ (Sec. 4.2), depth ``6n + 2``.

    Three stages of ``n`` basic blocks with 16/32/64 channels; the first
    block of stages 2 and 3 halves the resolution, and every shortcut is
    parameter-free (subsample + zero-pad, "option A"). ResNet-32 has
    463 504 parameters (~0.46 M with a 10-class linear head) -- not the
    bottleneck, x8-wide or ResNet-34 variants other long-tail code calls
    "ResNet-32". Any input of at least 4x4 works (global pooling is left to
    the neck, e.g. mmpretrain's ``GlobalAveragePooling``).

    Data flow: ``forward(): stem -> stage1..3 -> outputs of out_indices``.

    Args:
        depth (int): One of 20, 32, 44, 56, 110. Defaults to 32.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int]): Stages (0, 1, 2) whose output is
            returned. Defaults to (2, ).
        frozen_stages (int): Stages (stem = 0) to freeze. Defaults to -1.
        init_cfg (dict | list[dict], optional): Init config; defaults to
            Kaiming normal for convs and constant 1/0 for BN.
    """
    arch_settings = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
    widths = (16, 32, 64)

    def __init__(
        self,
        depth: int = 32,
        in_channels: int = 3,
        out_indices: Tuple[int, ...] = (2, ),
        frozen_stages: int = -1,
        init_cfg=[
            dict(
                type='Kaiming',
                layer='Conv2d',
                mode='fan_out',
                nonlinearity='relu'),
            dict(type='Constant', val=1, layer='BatchNorm2d')
        ]
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth!r}')
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in (0, 1, 2, -1) for i in out_indices):
            raise ValueError('out_indices must hold stage indices in '
                             f'(0, 1, 2), got {out_indices!r}')
        self.depth = depth
        self.out_indices = tuple(i % 3 for i in out_indices)
        self.frozen_stages = frozen_stages
        n = self.arch_settings[depth]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.stages = nn.ModuleList()
        in_planes = 16
        for i, planes in enumerate(self.widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(_BasicBlockA(in_planes, planes, stride))
                in_planes = planes
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for m in (self.conv1, self.bn1):
                m.eval()
                m.requires_grad_(False)
        for i in range(max(self.frozen_stages, 0)):
            self.stages[i].eval()
            self.stages[i].requires_grad_(False)

    def train(self, mode: bool = True) -> 'CifarResNet':
        super().train(mode)
        self._freeze_stages()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, C_in, H, W) -> stage outputs, e.g. ((N, 64, H/4, W/4), )."""
        x = F.relu(self.bn1(self.conv1(x)))
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
