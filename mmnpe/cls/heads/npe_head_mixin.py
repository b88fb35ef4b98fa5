"""NPE-LA for the mmpretrain classification heads that end in one linear
layer; each registered NPE head is this mixin plus one stock head."""
import inspect
from typing import Dict, List, Set, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmnpe.engine import TargetPriorMixin
from mmnpe.functional import (check_scale_factor, check_sign, fuse_npe_linear,
                              npe_estimate, npe_logit_adjust)
from mmnpe.functional.label_shift import TargetPriorArg

# Arguments the NPE heads add to their stock head.
NPE_HEAD_KEYS = ('num_pems', 'sign', 'scale_factor', 'pem_loss_weight',
                 'pem_init_std', 'target_prior')


def _accepted_keys(stock: type) -> Set[str]:
    """Keyword arguments ``stock`` accepts, following ``**kwargs`` up its
    bases until an ``__init__`` without them."""
    keys: Set[str] = set()
    for klass in stock.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        keys.update(
            p.name for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return keys


class NPEHeadMixin(TargetPriorMixin):
    """Linear classifier with K linear Prior Estimation Modules (NPE-LA).

    Mixed in front of a stock mmpretrain head whose logits are one linear
    layer (:attr:`final_linear`) on its ``pre_logits``; the K PEMs read the
    same ``pre_logits`` and are trained with the one-way logistic loss, their
    gradient reaching the backbone (no detach). Prediction subtracts
    ``scale_factor * eta`` from the logits (`NPE paper
    <https://arxiv.org/abs/2602.17853>`_, Sec. 2.2-2.3, Eq. 7, 8, 11).

    - ``loss(): pre_logits() -> final_linear / pems -> CE ('loss') +
      pem_loss_weight * sum_k OWL ('loss_npe')``
    - ``predict(): pre_logits() -> final_linear(h) - scale_factor * eta(h)
      -> softmax``

    ``num_pems=0`` is exactly the stock head; ``scale_factor=0`` trains the
    PEMs but predicts with the plain classifier (the paper's Table 3
    ablation). ``target_prior`` predicts for another class prior: the
    corrected logits plus ``log pi_t`` (centred), or, with ``'source'``,
    the plain logits (:class:`TargetPriorMixin`; docs/user_guides/
    label_shift.md). :meth:`fuse` folds everything into one ``nn.Linear``.
    The
    stock head's parameter names are kept, so its checkpoints load (only
    ``pems.*`` missing). Arguments that the stock head does not take are
    refused, naming the NPE head that takes them (e.g. ``hidden_dim`` ->
    ``NPEVisionTransformerClsHead``).

    Args:
        num_classes (int): Number of classes, > 1.
        in_channels (int): Feature dimension, > 0.
        num_pems (int): K, an int >= 0. Defaults to 1.
        sign (int): OWL sign, -1 or +1. Defaults to -1.
        scale_factor (float): alpha, finite and >= 0. Defaults to 1.0.
        pem_loss_weight (float): Weight of the summed PEM loss, >= 0.
            Defaults to 1.0.
        pem_init_std (float): Std of the PEMs' normal init (bias 0), > 0.
            Defaults to 0.001.
        target_prior (str | Sequence[float] | None): The class prior to
            predict for: None / 'uniform' (the paper's NPE-LA), 'source'
            (the plain logits), C probabilities or counts, or a JSON path.
            Defaults to None.
        **kwargs: Arguments of the stock head (``loss``, ``topk``,
            ``init_cfg`` ...).
    """

    #: Stock head class (the mixin's partner), per NPE head.
    stock_head: type = ClsHead
    #: NPE head class per stock head name, filled by subclassing.
    npe_heads: Dict[str, type] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        stock = next(
            b for b in cls.__mro__[1:]
            if issubclass(b, ClsHead) and not issubclass(b, NPEHeadMixin))
        cls.stock_head = stock
        NPEHeadMixin.npe_heads.setdefault(stock.__name__, cls)

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 num_pems: int = 1,
                 sign: int = -1,
                 scale_factor: float = 1.0,
                 pem_loss_weight: float = 1.0,
                 pem_init_std: float = 0.001,
                 target_prior: TargetPriorArg = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if isinstance(num_pems,
                      bool) or not isinstance(num_pems, int) or num_pems < 0:
            raise ValueError(
                f'{name}: num_pems must be an integer >= 0, got {num_pems!r}')
        if isinstance(
                num_classes,
                bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'{name}: num_classes must be an int > 1 (one '
                             f'output per class), got {num_classes!r}')
        if isinstance(
                in_channels,
                bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'{name}: in_channels must be an int > 0 (one '
                             'pooled feature vector per image), got '
                             f'{in_channels!r}')
        if not (isinstance(pem_loss_weight,
                           (int, float)) and pem_loss_weight >= 0):
            raise ValueError(f'{name}: pem_loss_weight must be a number >= '
                             f'0, got {pem_loss_weight!r}')
        if not (isinstance(pem_init_std, (int, float)) and pem_init_std > 0):
            raise ValueError(f'{name}: pem_init_std must be a number > 0, '
                             f'got {pem_init_std!r}')
        self._check_stock_kwargs(kwargs)
        self.sign = check_sign(sign)
        self.scale_factor = check_scale_factor(scale_factor)
        super().__init__(
            num_classes=num_classes, in_channels=in_channels, **kwargs)
        # Before the target prior, which a head without PEMs refuses.
        self.num_pems = num_pems
        self.init_target_prior(target_prior, num_classes)
        self.pem_loss_weight = float(pem_loss_weight)
        self.pem_init_std = pem_init_std
        if num_pems:
            # All K PEMs in one matmul: (N, D) -> (N, K * C).
            self.pems = nn.Linear(self.final_linear.in_features,
                                  num_pems * num_classes)
            self.pem_loss = MODELS.build(
                dict(type='OneWayLogisticLoss', sign=sign))
            self._init_pems()

    @classmethod
    def _check_stock_kwargs(cls, kwargs: dict) -> None:
        """Refuse arguments the stock head does not take, at build time."""
        unknown = set(kwargs) - _accepted_keys(cls.stock_head)
        if not unknown:
            return
        stock = cls.stock_head.__name__
        owners = [
            f"{head_name} (type='{npe.__name__}')"
            for head_name, npe in NPEHeadMixin.npe_heads.items()
            if npe is not cls and unknown <= _accepted_keys(npe.stock_head)
        ]
        supported = ', '.join(
            f'{head_name} -> {npe.__name__}'
            for head_name, npe in sorted(NPEHeadMixin.npe_heads.items()))
        hint = (f'they are arguments of {" / ".join(owners)}' if owners else
                f'NPE versions exist for {supported} only; other heads '
                '(DeiTClsHead, ConformerHead, multi-label heads ...) cannot '
                'carry PEMs')
        raise TypeError(
            f'{cls.__name__} is {stock} with PEMs and takes the arguments of '
            f'{stock} only, got {sorted(unknown)}: {hint}')

    @property
    def final_linear(self) -> nn.Linear:
        """The linear layer that maps ``pre_logits`` to the logits."""
        raise NotImplementedError

    def _init_pems(self) -> None:
        nn.init.normal_(self.pems.weight, 0, self.pem_init_std)
        nn.init.zeros_(self.pems.bias)

    def init_weights(self) -> None:
        """Initialise as the stock head does, then the PEMs (the stock
        ``init_cfg`` also matches the PEMs' ``nn.Linear``)."""
        super().init_weights()
        if self.num_pems:
            self._init_pems()

    def pem_outputs(self, pre_logits: torch.Tensor) -> torch.Tensor:
        """PEM outputs, (N, K, C)."""
        return self.pems(pre_logits).view(-1, self.num_pems, self.num_classes)

    def _pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The stock head's ``pre_logits``, checked to be one (N, D)
        feature per image: a DeiT backbone gives (cls, dist) token pairs,
        which no NPE head reads."""
        pre_logits = self.pre_logits(feats)
        d = self.final_linear.in_features
        if not (isinstance(pre_logits, torch.Tensor) and pre_logits.dim() == 2
                and pre_logits.shape[1] == d):
            got = (
                tuple(pre_logits.shape) if isinstance(pre_logits, torch.Tensor)
                else type(pre_logits).__name__)
            raise TypeError(
                f'{type(self).__name__} needs one pooled feature (N, {d}) '
                f'per image before its classifier, got {got} (distilled '
                'ViTs such as DeiT give (cls, dist) token pairs, which NPE '
                'heads do not support)')
        return pre_logits

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """NPE-LA logits, (N, C): ``final_linear(h) - scale_factor *
        eta(h)`` (+ the target prior's centred log, when one is set)."""
        pre_logits = self._pre_logits(feats)
        logits = self.final_linear(pre_logits)
        if (self.num_pems and self.prediction_scale_factor != 0
                and not self.restores_plain_logits):
            logits = npe_logit_adjust(logits, self.estimate_prior(pre_logits),
                                      self.prediction_scale_factor)
        return self.add_target_prior(logits)

    def estimate_prior(self, pre_logits: torch.Tensor) -> torch.Tensor:
        """NPE estimate ``eta`` of the pooled features (N, D), (N, C),
        centred over classes."""
        # The K outputs as one (K, N, C) tensor: one reduction, no loop
        # over the PEMs.
        return npe_estimate(
            self.pem_outputs(pre_logits).transpose(0, 1), self.sign)

    def pem_true_class_outputs(self, pre_logits: torch.Tensor,
                               target: torch.Tensor) -> torch.Tensor:
        """Each PEM's output at the true class, (N, K):
        ``u[n, k] = g_k(h_n)[y_n]``.

        What the one-way logistic loss reads (NPE paper, Eq. 6: only the
        true-class coordinate is touched), computed from the K true-class
        rows of the PEM weight instead of all K x C outputs: N x K x D
        multiply-adds rather than N x K x C x D, which at thousands of
        classes is most of the PEMs' training cost. Values and gradients
        equal those of :meth:`pem_outputs` gathered at ``target``.

        Args:
            pre_logits (Tensor): Pooled features, (N, D).
            target (Tensor): Labels in ``[0, num_classes)``, (N, ).

        Returns:
            Tensor: (N, K).
        """
        k, c = self.num_pems, self.num_classes
        if target.shape != pre_logits.shape[:1]:
            raise ValueError(
                f'{type(self).__name__}: target must hold one label per '
                f'feature, shape ({pre_logits.size(0)},), got '
                f'{tuple(target.shape)}')
        bad = (target < 0) | (target >= c)
        if bad.any():
            raise ValueError(
                f'{type(self).__name__}: labels must lie in [0, {c - 1}] '
                f'(num_classes={c}), got {int(target[bad][0])}')
        rows = self.pems.weight.view(k, c, -1).index_select(1, target)
        bias = self.pems.bias.view(k, c).index_select(1, target)
        # (K, N, D) . (N, D) -> (N, K): one batched product, no loop over K.
        return torch.einsum('knd,nd->nk', rows, pre_logits) + bias.t()

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> dict:
        """CE on the plain logits (``loss``) plus the summed OWL of the K
        PEMs (``loss_npe``, NPE paper Eq. 6)."""
        pre_logits = self._pre_logits(feats)
        losses = self._get_loss(
            self.final_linear(pre_logits), data_samples, **kwargs)
        if self.num_pems:
            if 'gt_score' in data_samples[0]:
                raise ValueError(
                    f'{type(self).__name__} needs hard labels for the '
                    'one-way logistic loss; batch augmentations that make '
                    'soft labels (Mixup, CutMix) are not supported')
            target = torch.cat([s.gt_label
                                for s in data_samples]).to(pre_logits.device)
            true_class = self.pem_true_class_outputs(pre_logits, target)
            # Mean over samples, sum over PEMs (Eq. 6). Each (sample, PEM)
            # pair is one row of the OWL loss whose only column, index 0, is
            # its true class.
            loss = self.pem_loss(
                true_class.reshape(-1, 1),
                torch.zeros(
                    true_class.numel(),
                    dtype=torch.long,
                    device=true_class.device),
                avg_factor=target.numel())
            losses['loss_npe'] = self.pem_loss_weight * loss
        return losses

    @property
    def final_linear_name(self) -> str:
        """Name of :attr:`final_linear` in this head's ``state_dict``
        (``fc``, ``layers.head`` ...)."""
        return next(n for n, m in self.named_modules()
                    if m is self.final_linear)

    def fuse(self) -> nn.Linear:
        """One ``nn.Linear`` whose logits equal :meth:`forward`'s (up to a
        per-sample constant when centring, which changes neither softmax nor
        argmax); a target prior's centred log goes into the bias."""
        linear = self.final_linear
        fc = nn.Linear(linear.in_features, self.num_classes).to(linear.weight)
        if not self.num_pems or self.restores_plain_logits:
            fc.load_state_dict(linear.state_dict())
        else:
            k, c, d = self.num_pems, self.num_classes, linear.in_features
            weight, bias = fuse_npe_linear(linear.weight, linear.bias,
                                           self.pems.weight.view(k, c, d),
                                           self.pems.bias.view(k,
                                                               c), self.sign,
                                           self.prediction_scale_factor)
            fc.weight.data.copy_(weight)
            fc.bias.data.copy_(bias)
        offset = self.target_prior_offset()
        if offset is not None:
            fc.bias.data += offset.to(fc.bias)
        return fc
