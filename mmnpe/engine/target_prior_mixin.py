"""The ``target_prior`` key of the prior-correcting heads and segmentors.

NPE-LA and post-hoc logit adjustment remove the training prior and predict
as if every class were equally likely. With ``target_prior`` they predict
for another prior ``pi_t`` by Bayes' rule: the training prior removed in
full, then ``log pi_t`` added (centred over classes, which changes neither
softmax nor argmax). At a partial correction (``scale_factor`` alpha < 1,
``tau`` < 1) the corrected logits still hold under about ``pi_train^(1 -
alpha)``, so the offset is ``log pi_t - (1 - alpha) * eta`` (NPE-LA, per
sample) or ``log pi_t - (1 - tau) * log pi_train`` (post-hoc LA): the
prediction for ``pi_t`` does not depend on alpha. See
docs/user_guides/label_shift.md.
"""
from typing import Optional

import torch
from torch import Tensor

from mmnpe.functional import centered_log_prior, class_axis, load_target_prior
from mmnpe.functional.label_shift import TargetPriorArg, floor_prior


class TargetPriorMixin:
    """Predict for a target class prior: ``target_prior`` and its buffer.

    Mixed into :class:`NPEHeadMixin`, :class:`LogitAdjustClsHead` and
    :class:`PriorAdjustedEncoderDecoder` (so every NPE-LA and post-hoc LA
    head and segmentor); call :meth:`init_target_prior` in ``__init__``
    once the number of classes is known. ``target_prior`` may be

    - None or ``'uniform'``: the correction as it is (equally likely
      classes), bit for bit the model without the key;
    - a list / tensor of C probabilities or counts, or the path of a JSON
      file holding one (a list, or an object with ``"prior"`` as
      ``tools/analysis/label_shift.py`` writes it, or ``"counts"`` as
      ``tools/analysis/class_counts.py`` writes it): normalised, validated
      when the model is built (length, negative, zero, NaN, all zero;
      entries below ``PRIOR_FLOOR / C`` are raised to it, with a warning),
      and the model predicts from the logits corrected at full strength,
      ``z - eta``, plus ``log pi_t - mean(log pi_t)``: at ``scale_factor``
      alpha (or ``tau``) that is the corrected logits plus ``log pi_t - (1 -
      alpha) * eta``, Bayes' rule from the prior those logits hold under;
    - ``'source'``: the training prior back. NPE-LA puts back what it
      removed, ``scale_factor * eta``, so exactly the plain logits return;
      post-hoc LA (:attr:`source_undoes_correction` False) adds the counts'
      centred log prior to the fully corrected logits, i.e. ``'source'`` is
      the training counts given as ``target_prior``: the plain logits
      again, up to rounding, at every ``tau``.

    A given prior on a model without a correction (``num_pems=0``) is
    refused: its logits hold under the training prior, which it does not
    know.

    The normalised prior is a *non-persistent* buffer: it follows the
    device but is not saved in checkpoints, so a prediction setting always
    comes from the config (``--cfg-options model.head.target_prior=...``)
    and never from whatever a checkpoint was trained or saved with.

    Attributes:
        target_prior (Tensor): The prior, float64 (C,); uniform unless the
            mode is ``'given'``.
        target_prior_mode (str): ``'uniform'``, ``'source'`` or ``'given'``.
        target_prior_file (str | None): The JSON path, when given one.
    """

    #: 'source' undoes the correction (NPE-LA) instead of adding the
    #: counts' log prior (post-hoc LA, which overrides
    #: :meth:`source_log_prior_offset`).
    source_undoes_correction: bool = True

    def init_target_prior(self,
                          target_prior: TargetPriorArg,
                          num_classes: int,
                          name: str = 'target_prior') -> None:
        """Register the buffer and set it from ``target_prior``.

        Args:
            target_prior (str | Sequence[float] | Tensor | None): See the
                class docstring.
            num_classes (int): C.
            name (str): The argument's name in error messages.
        """
        self._target_prior_num_classes = num_classes
        self._target_prior_name = name
        self.register_buffer(
            'target_prior',
            torch.full((num_classes, ), 1.0 / num_classes,
                       dtype=torch.float64),
            persistent=False)
        self.set_target_prior(target_prior)

    def set_target_prior(self, target_prior: TargetPriorArg) -> None:
        """Validate ``target_prior`` and predict for it from now on.

        Raises:
            ValueError: As :func:`mmnpe.functional.load_target_prior`.
        """
        c = self._target_prior_num_classes
        mode, prior = load_target_prior(target_prior, c,
                                        self._target_prior_name)
        if mode == 'given' and getattr(self, 'num_pems', None) == 0:
            raise ValueError(
                f'{self._target_prior_name}: {type(self).__name__} has '
                'num_pems=0, so its logits are the plain ones, which hold '
                'under the training prior it does not know; adding log '
                'pi_t to them would not predict for pi_t. Use '
                'num_pems >= 1, or LogitAdjustClsHead with the training '
                "class_counts (its target_prior removes them), or 'source'")
        if prior is None:
            prior = torch.full((c, ), 1.0 / c, dtype=torch.float64)
        self.target_prior_mode = mode
        self.target_prior_file = (
            target_prior
            if isinstance(target_prior, str) and mode == 'given' else None)
        # Re-assigning a registered buffer keeps it a (non-persistent)
        # buffer.
        self.target_prior = prior.to(self.target_prior.device)

    @property
    def prediction_scale_factor(self) -> float:
        """The correction strength prediction applies: ``scale_factor``,
        except 1 (the training prior removed in full) when a target prior
        is added, whose offset then needs no ``(1 - alpha)`` term."""
        if self.target_prior_mode == 'uniform':
            return self.scale_factor
        return 1.0

    @property
    def restores_plain_logits(self) -> bool:
        """Whether prediction skips the correction (``'source'`` on
        NPE-LA)."""
        return (self.target_prior_mode == 'source'
                and self.source_undoes_correction)

    def source_log_prior_offset(self) -> Tensor:
        """The centred training log prior that ``'source'`` adds, (C,)
        float64 (post-hoc LA: from its counts)."""
        raise NotImplementedError(
            f'{type(self).__name__} restores its plain logits for '
            "target_prior='source' and has no separate source prior")

    def target_prior_offset(self) -> Optional[Tensor]:
        """What prediction adds to the logits corrected at
        :attr:`prediction_scale_factor`, (C,) float64: ``log pi_t -
        mean(log pi_t)``, or None (uniform, or ``'source'`` on NPE-LA).

        The prior is floored at ``PRIOR_FLOOR / C`` first, so the offset is
        finite even when a half-precision model has rounded a tiny entry of
        the buffer to 0.
        """
        mode = self.target_prior_mode
        if mode == 'uniform' or self.restores_plain_logits:
            return None
        if mode == 'source':
            return self.source_log_prior_offset()
        return centered_log_prior(
            floor_prior(self.target_prior.double()).log())

    def add_target_prior(self, logits: Tensor) -> Tensor:
        """``logits`` (N, C) or (N, C, H, W) plus :meth:`target_prior_offset`
        along the class axis; ``logits`` themselves when there is none."""
        offset = self.target_prior_offset()
        if offset is None:
            return logits
        return logits + class_axis(offset, logits)
