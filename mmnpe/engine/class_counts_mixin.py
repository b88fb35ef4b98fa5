"""Class counts held by a module: a buffer, a source, and one setter.

Every count-using component (logit-adjusted and balanced losses, the post-hoc
LA head and segmentor, IWB) mixes in :class:`ClassCountsMixin`, so that counts
are given, validated, stored, checkpointed and filled from the training data
in one way: class statistics are buffers, as in MMPretrain's
``SeesawLoss``, so they follow the device and land in checkpoints.
"""
import logging
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmnpe.functional import check_class_counts, load_class_counts, log_prior

CountsArg = Optional[Union[str, Sequence[float], Tensor]]


class ClassCountsMixin:
    """Per-class counts in a ``class_counts`` buffer, shape (C, ), float64.

    Mix in *before* the ``nn.Module`` base (``class X(ClassCountsMixin,
    nn.Module)``) and call :meth:`init_class_counts` in ``__init__`` after
    ``super().__init__()``. ``class_counts`` may be

    - a list (or tensor) of counts: validated at once (``ValueError`` naming
      the argument and the class index);
    - the path of a counts JSON written by ``tools/analysis/class_counts.py``:
      read and validated at once; :class:`ClassCountsHook` checks its class
      names against the data set's at the start of training / testing;
    - ``None``: counted from the training data set by
      :class:`ClassCountsHook` at the start of the run (classification data
      sets: images per class through ``get_gt_labels()``).

    The buffer follows the device and is saved in checkpoints; until it is
    set it is all zero (an invalid count vector, so "unset" cannot be
    mistaken for real counts) and :meth:`get_class_counts` raises.

    Attributes:
        class_counts (Tensor): The counts, (C, ) float64; (0, ) while unset
            when the number of classes is not known at build time (losses).
        class_counts_from_dataset (bool): True when built with
            ``class_counts=None``.
        class_counts_file (str | None): The JSON path, when given one.
        class_counts_eps (float | None): Allows zero counts, see
            :func:`mmnpe.functional.check_class_counts`.
    """

    def init_class_counts(self,
                          class_counts: CountsArg,
                          num_classes: Optional[int] = None,
                          eps: Optional[float] = None,
                          name: str = 'class_counts',
                          kind: Optional[str] = None) -> None:
        """Register the buffer and fill it from ``class_counts`` if given.

        Args:
            class_counts (str | Sequence[float] | Tensor | None): The counts,
                a counts-JSON path, or None (from the training data set).
            num_classes (int, optional): The expected number of counts; None
                when unknown until the first call (a loss). Defaults to None.
            eps (float, optional): Allows zero counts (see
                :func:`check_class_counts`). Defaults to None.
            name (str): The argument's name in error messages.
            kind (str, optional): What :class:`ClassCountsHook` counts for
                this module: None for the host's default (images for
                classification, instances for detection), 'images' for
                images per class of a detection data set. Defaults to None.
        """
        # Validates eps now, even when the counts come later.
        check_class_counts([1.0], eps=eps, name=name)
        self.class_counts_eps = eps
        self._class_counts_name = name
        self._class_counts_num_classes = num_classes
        self.class_counts_kind = kind
        self._class_counts_set = False
        self.class_counts_from_dataset = class_counts is None
        self.class_counts_file = (
            class_counts if isinstance(class_counts, str) else None)
        self.register_buffer(
            'class_counts',
            torch.zeros(num_classes or 0, dtype=torch.float64),
            persistent=True)
        if class_counts is not None:
            self.set_class_counts(load_class_counts(class_counts, name=name))

    @property
    def has_class_counts(self) -> bool:
        """Whether the counts have been set (given, loaded or counted)."""
        # A Python flag, kept by the two ways counts arrive (the setter and
        # the state dict), not ``bool(class_counts.sum() > 0)``: prediction
        # asks this in ``forward``, where a data-dependent branch cannot be
        # traced (torch.export stops at it with GuardOnDataDependentSymNode,
        # so the ONNX export of a post-hoc LA model failed).
        return getattr(self, '_class_counts_set', False)

    def set_class_counts(self,
                         counts: Union[Sequence[float], Tensor],
                         classes: Optional[Sequence[str]] = None) -> None:
        """Validate ``counts`` and copy them into the buffer.

        Args:
            counts (Sequence[float] | Tensor): One count per class, (C, ).
            classes (Sequence[str], optional): The classes' names, for
                error messages. Defaults to None.

        Raises:
            ValueError: Wrong length (vs ``num_classes`` when known),
                negative, NaN/inf, all zero, or a zero without ``eps``.
        """
        counts = check_class_counts(
            counts,
            num_classes=self._class_counts_num_classes,
            eps=self.class_counts_eps,
            name=self._class_counts_name,
            classes=classes)
        device = self.class_counts.device
        # Re-assigning a registered buffer keeps it a buffer; the shape may
        # change from (0, ) when C was unknown at build time.
        self.class_counts = counts.to(device)
        self._class_counts_set = True

    def get_class_counts(self) -> Tensor:
        """The counts, (C, ) float64; a clear error while they are unset."""
        if not self.has_class_counts:
            raise RuntimeError(
                f'{type(self).__name__}: {self._class_counts_name} is not '
                'set. Pass class_counts=[...] or the path of a counts JSON '
                '(tools/analysis/class_counts.py CONFIG --out FILE), or add '
                "custom_hooks = [dict(type='ClassCountsHook')] to the config "
                'so they are counted from the training data set')
        return self.class_counts

    def log_class_prior(self) -> Tensor:
        """``log(counts / sum + eps)``, (C, ) float64 (raises while unset)."""
        return log_prior(self.get_class_counts(), self.class_counts_eps)

    def check_num_class_counts(self, num: int, what: str) -> Tensor:
        """The counts, checked to have ``num`` entries (``what`` says whose
        number that is, for the error message)."""
        counts = self.get_class_counts()
        if counts.numel() != num:
            raise ValueError(
                f'{type(self).__name__}: {self._class_counts_name} has '
                f'{counts.numel()} entries but {what} has {num}')
        return counts

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys,
                              error_msgs) -> None:
        key = prefix + 'class_counts'
        incoming = state_dict.get(key)
        if isinstance(incoming, Tensor):
            if incoming.shape != self.class_counts.shape and (
                    self.class_counts.numel() == 0):
                # Built without knowing C (a loss): take the saved shape.
                self.class_counts = torch.zeros_like(
                    incoming,
                    dtype=torch.float64,
                    device=self.class_counts.device)
            elif (self.has_class_counts and not self.class_counts_from_dataset
                  and incoming.shape == self.class_counts.shape
                  and bool(incoming.double().sum() > 0) and not torch.equal(
                      incoming.double().cpu(), self.class_counts.cpu())):
                print_log(
                    f'{type(self).__name__}: the checkpoint\'s '
                    f'{self._class_counts_name} replace the configured ones '
                    '(a checkpoint holds the counts its model was built '
                    'with)',
                    logger='current',
                    level=logging.WARNING)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if isinstance(incoming, Tensor):
            # Zeros are the "unset" value a checkpoint of a model whose
            # counts were never set holds (see the class docstring).
            self._class_counts_set = (
                self.class_counts.numel() > 0
                and bool(self.class_counts.sum() > 0))
