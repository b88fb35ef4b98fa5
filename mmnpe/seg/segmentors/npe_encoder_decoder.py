import copy
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import ModuleList
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList, add_prefix
from torch import Tensor

from mmnpe.functional import check_scale_factor, npe_estimate
from mmnpe.functional.label_shift import TargetPriorArg
from mmnpe.seg.decode_heads import PEMDecodeHead
from .prior_adjusted_encoder_decoder import PriorAdjustedEncoderDecoder


def _has_trainable(module: Optional[nn.Module]) -> bool:
    return module is not None and any(p.requires_grad
                                      for p in module.parameters())


@MODELS.register_module()
class NPEEncoderDecoder(PriorAdjustedEncoderDecoder):
    """Encoder-decoder segmentor with Neural Prior Estimation (NPE-LA).

    K Prior Estimation Modules (PEMs) read the same features as the decode
    head and learn the class log-prior through the one-way logistic loss;
    at inference the logits become ``z - scale_factor * eta``
    (`NPE paper <https://arxiv.org/abs/2602.17853>`_, Eq. 8, 11).

    - ``loss(): extract_feat() -> decode/aux losses (skipped when frozen)
      + sum_k pem_heads[k].loss()``
    - ``encode_decode(): extract_feat() -> decode_head.forward() - alpha *
      eta -> decode_head.predict_by_feat()``

    The correction path (whole, slide, TTA, ``mode='tensor'``) is that of
    :class:`PriorAdjustedEncoderDecoder`, shared with post-hoc LA.
    A stock :class:`EncoderDecoder` checkpoint loads without key remapping
    (only the ``pem_heads.*`` keys are missing).

    When :class:`FrozenBackboneHook` froze the backbone (and neck), features
    are computed without autograd; a frozen decode or auxiliary head is then
    not run at all during training, as it has nothing to learn.

    Decode heads are checked as :class:`PriorAdjustedEncoderDecoder` says.
    Every PEM inherits the decode head's ``ignore_index`` and
    ``align_corners``; a PEM setting another value is an error.

    ``target_prior`` predicts for another pixel prior ``pi_t`` (one for the
    whole data set): the corrected logits plus ``log pi_t - mean log pi_t``;
    ``'source'`` puts back ``scale_factor * eta``, so exactly the stock
    logits return (:class:`TargetPriorMixin`).

    Args:
        pem_head (dict | list[dict]): Config of one PEM, or of K PEMs.
        scale_factor (float): alpha, finite and >= 0; 0 gives exactly the
            stock model's logits. Defaults to 1.0.
        target_prior (str | Sequence[float] | None): The class prior to
            predict for: None / 'uniform' (NPE-LA as it is), 'source' (the
            stock logits), C probabilities or counts, or a JSON path.
            Defaults to None.
        **kwargs: Arguments of :class:`EncoderDecoder`.
    """

    def __init__(self,
                 *args,
                 pem_head: Union[ConfigType, Sequence[ConfigType]],
                 scale_factor: float = 1.0,
                 target_prior: TargetPriorArg = None,
                 **kwargs) -> None:
        # Checked before the (possibly large) backbone is built.
        scale_factor = check_scale_factor(scale_factor)
        super().__init__(*args, **kwargs)
        self.scale_factor = scale_factor
        self.init_target_prior(target_prior, self.num_classes)
        self._init_pem_heads(pem_head)

    def _init_pem_heads(
            self, pem_head: Union[ConfigType, Sequence[ConfigType]]) -> None:
        cfgs = [pem_head] if isinstance(pem_head, dict) else list(pem_head)
        if len(cfgs) == 0:
            raise ValueError('pem_head must be a dict or a non-empty list of '
                             'dicts, got an empty list')
        self.pem_heads = ModuleList()
        decode_head = self._final_decode_head()
        for k, cfg in enumerate(cfgs):
            if cfg.get('num_classes') != self.num_classes:
                raise ValueError(
                    f'pem_head[{k}].num_classes must equal the decode '
                    f'head\'s num_classes ({self.num_classes}), got '
                    f'{cfg.get("num_classes")!r}')
            cfg = copy.deepcopy(cfg)
            # A PEM must ignore the labels the decode head ignores: with
            # mmseg's default 255 a void label below num_classes would be
            # trained as a class.
            for key in ('ignore_index', 'align_corners'):
                value = getattr(decode_head, key)
                if key not in cfg:
                    cfg[key] = value
                elif cfg[key] != value:
                    raise ValueError(
                        f'pem_head[{k}].{key} must equal the decode head\'s '
                        f'{key} ({value!r}), or be left out to inherit it; '
                        f'got {cfg[key]!r}')
            head = MODELS.build(cfg)
            if not isinstance(head, PEMDecodeHead):
                raise TypeError(
                    f'pem_head[{k}] must build a PEMDecodeHead (PEMFCNHead, '
                    'PEMASPPHead, PEMUPerHead ...), whose output is trained '
                    f'as a prior estimate; got {type(head).__name__}')
            self.pem_heads.append(head)

    def estimate_prior(self, x: Sequence[Tensor]) -> Tensor:
        """NPE estimate ``eta`` from the features, (N, C, h, w), centred."""
        outs = [head(x) for head in self.pem_heads]
        size = outs[0].shape[2:]
        outs = [
            o if o.shape[2:] == size else resize(
                o,
                size=size,
                mode='bilinear',
                align_corners=self.align_corners) for o in outs
        ]
        return npe_estimate(outs, [head.sign for head in self.pem_heads])

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Decode (and auxiliary) losses as usual plus the PEM losses.

        PEM losses are prefixed ``pem.`` (one PEM) or ``pem_{k}.`` (K > 1);
        the training objective is their sum (NPE paper, Eq. 6).
        """
        features_train = _has_trainable(self.backbone) or _has_trainable(
            getattr(self, 'neck', None))
        # Frozen features: no autograd graph through backbone and neck.
        with torch.set_grad_enabled(features_train
                                    and torch.is_grad_enabled()):
            x = self.extract_feat(inputs)

        losses = dict()
        if features_train or _has_trainable(self.decode_head):
            losses.update(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head and (features_train or _has_trainable(
                self.auxiliary_head)):
            losses.update(self._auxiliary_head_forward_train(x, data_samples))

        many = len(self.pem_heads) > 1
        for k, head in enumerate(self.pem_heads):
            loss_pem = head.loss(x, data_samples, self.train_cfg)
            losses.update(add_prefix(loss_pem, f'pem_{k}' if many else 'pem'))
        return losses
