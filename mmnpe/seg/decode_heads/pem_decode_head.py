from typing import List, Optional

import torch.nn as nn
from mmengine.model import normal_init
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.utils import ConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmnpe.seg.losses import OneWayLogisticLoss


class PEMDecodeHead(BaseDecodeHead):
    """Base of the Prior Estimation Modules (PEMs) for dense prediction.

    A PEM is a decode head whose output is trained with the one-way logistic
    loss only, so that it learns ``log(prior) + const`` per class instead of
    a classifier (`NPE paper <https://arxiv.org/abs/2602.17853>`_, Sec. 3.2).
    Subclasses combine this base with a stock head, e.g.
    ``class PEMASPPHead(PEMDecodeHead, ASPPHead)``, and so reuse its
    structure; this base only changes what must differ:

    - no normalisation layers: BN would erase the scale that carries the
      prior, so ``norm_cfg`` must stay None;
    - every conv starts at N(0, ``init_std``) with zero bias, so the
      saturating loss is not saturated at step 0;
    - ``loss_decode`` defaults to :class:`OneWayLogisticLoss` and must
      contain one; the loss dict has no ``acc_seg`` (a PEM is no classifier);
    - one output per class: ``out_channels == num_classes > 1``.

    Data flow: ``loss(): forward() -> loss_by_feat()``;
    ``predict(): forward() -> predict_by_feat()``.

    Args:
        num_classes (int): Number of classes, > 1.
        out_channels (int, optional): Must be None or ``num_classes``.
        norm_cfg (dict, optional): Must be None. Defaults to None.
        dropout_ratio (float): Dropout before the last conv. Defaults to 0.
        loss_decode (dict | list[dict]): Loss config(s). Defaults to
            ``dict(type='OneWayLogisticLoss')``.
        init_std (float): Std of the normal init of every conv.
            Defaults to 0.001.
        init_cfg (dict, optional): Extra init config. Defaults to None.
        **kwargs: Arguments of the stock head the subclass reuses.
    """

    def __init__(self,
                 *,
                 num_classes: int,
                 out_channels: Optional[int] = None,
                 norm_cfg: Optional[ConfigType] = None,
                 dropout_ratio: float = 0.,
                 loss_decode: ConfigType = dict(type='OneWayLogisticLoss'),
                 init_std: float = 0.001,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if norm_cfg is not None:
            raise ValueError(
                f'{name}: norm_cfg must be None (normalisation would erase '
                f'the scale that carries the prior), got {norm_cfg!r}')
        if isinstance(
                num_classes,
                bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'{name}: num_classes must be an int > 1 (one '
                             f'output per class), got {num_classes!r}')
        if out_channels not in (None, num_classes):
            raise ValueError(
                f'{name}: out_channels must equal num_classes '
                f'({num_classes}); a PEM needs one output per class, got '
                f'{out_channels!r}')
        if not init_std > 0:
            raise ValueError(f'{name}: init_std must be > 0, got {init_std!r}')
        super().__init__(
            num_classes=num_classes,
            out_channels=num_classes,
            norm_cfg=None,
            dropout_ratio=dropout_ratio,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        owl = [m for m in self._losses() if isinstance(m, OneWayLogisticLoss)]
        if not owl:
            raise ValueError(
                f'{name}: loss_decode must contain a OneWayLogisticLoss (it '
                'is what makes the output a prior estimate), got '
                f'{[type(m).__name__ for m in self._losses()]}')
        self.sign = owl[0].sign
        self.init_std = init_std
        self._init_pem_weights()

    def _transform_inputs(self, inputs: List[Tensor]) -> Tensor:
        """Select the features as :class:`BaseDecodeHead` does.

        A ViT with ``output_cls_token=True`` (DPT) gives a ``[feature map,
        cls token]`` pair per stage; a PEM reads the feature map.
        """
        if isinstance(inputs, (list, tuple)):
            inputs = [
                x[0] if isinstance(x, (list, tuple)) else x for x in inputs
            ]
        return super()._transform_inputs(inputs)

    def _losses(self) -> List[nn.Module]:
        if isinstance(self.loss_decode, nn.ModuleList):
            return list(self.loss_decode)
        return [self.loss_decode]

    def _init_pem_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, mean=0, std=self.init_std, bias=0)

    def init_weights(self) -> None:
        """Initialise, then re-apply the PEM init.

        The stock heads' ``ConvModule`` children re-run Kaiming init from
        ``init_weights``, which would overwrite the small normal init.
        """
        super().init_weights()
        self._init_pem_weights()

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """Compute the PEM losses.

        Args:
            seg_logits (Tensor): PEM output, shape (N, C, h, w).
            batch_data_samples (list[:obj:`SegDataSample`]): Samples holding
                ``gt_sem_seg`` of shape (1, H, W).

        Returns:
            dict[str, Tensor]: One entry per loss; no ``acc_seg``.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)
        seg_logits = resize(
            input=seg_logits,
            size=seg_label.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        seg_weight = None
        if self.sampler is not None:
            seg_weight = self.sampler.sample(seg_logits, seg_label)
        seg_label = seg_label.squeeze(1)
        losses = dict()
        for loss_decode in self._losses():
            loss = loss_decode(
                seg_logits,
                seg_label,
                weight=seg_weight,
                ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            losses[name] = losses[name] + loss if name in losses else loss
        return losses
