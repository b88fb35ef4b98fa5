"""The prior-correction interface the analysis tools are written against.

A segmentor (an mmseg ``EncoderDecoder``) exposes ``scale_factor`` and
``estimate_prior(feats) -> eta`` ((N, C, h, w), or broadcastable
(N, C, 1, 1)); a classifier's head exposes ``scale_factor`` and
``estimate_prior(pre_logits) -> eta`` ((N, C)). Adjusted logits are
``z - scale_factor * eta``, where ``z`` is what the segmentor predicts from
(its decode path ``_decode_logits()``: the last stage of a cascade, the
first output of DANet's / EncNet's heads; the decode head's output for any
other model) or the head's output at ``scale_factor = 0``
(classification). NPE-LA (``NPEEncoderDecoder``,
``NPECascadeEncoderDecoder``, ``NPEClsHead``) and the post-hoc logit
adjustment (``LogitAdjustEncoderDecoder``,
``LogitAdjustCascadeEncoderDecoder``, ``LogitAdjustClsHead``) share it, so
every tool works on all of them.
"""
from contextlib import contextmanager
from typing import Iterator, Tuple

import torch.nn as nn


def prior_correction(model: nn.Module, tool: str) -> Tuple[str, nn.Module]:
    """Which task the model solves and what holds its prior correction.

    Args:
        model (nn.Module): A built mmseg segmentor or mmpretrain classifier.
        tool (str): Name used in the error message.

    Returns:
        tuple[str, nn.Module]: ``('seg', model)`` or ``('cls', model.head)``.

    Raises:
        ValueError: The model has no prior correction (e.g. no PEMs).
    """
    if hasattr(model, 'decode_head') and hasattr(model, 'extract_feat'):
        task, holder, where = 'seg', model, 'model'
    elif hasattr(model, 'head') and hasattr(model, 'extract_feat'):
        task, holder, where = 'cls', model.head, 'model.head'
    else:
        raise ValueError(
            f'{tool} works on mmseg segmentors (with decode_head) and '
            'mmpretrain classifiers (with head); got a '
            f'{type(model).__name__}')
    if not (hasattr(holder, 'scale_factor')
            and callable(getattr(holder, 'estimate_prior', None))):
        raise ValueError(
            f'{tool} needs a model with a prior correction (scale_factor and'
            ' estimate_prior(), as NPEEncoderDecoder, NPEClsHead and the '
            f'post-hoc logit-adjustment models have); the config\'s {where} '
            f'is a {type(holder).__name__}, which has none (no PEMs)')
    if getattr(holder, 'num_pems', None) == 0:
        raise ValueError(
            f'{tool} needs a prior estimate, but {where}.num_pems is 0 (a '
            f'{type(holder).__name__} without PEMs); use a config with '
            'num_pems >= 1 and its checkpoint')
    if task == 'seg' and getattr(model, 'out_channels', 2) == 1:
        raise ValueError(f'{tool} needs one output per class; the decode '
                         'head has out_channels == 1 (sigmoid)')
    return task, holder


@contextmanager
def target_prior_set(holder: nn.Module, value) -> Iterator[None]:
    """Temporarily predict for ``value`` (a ``target_prior`` setting, e.g.
    ``'uniform'``); nothing happens for a holder without the key (a stock
    head or segmentor). The previous setting is restored on exit."""
    if not callable(getattr(holder, 'set_target_prior', None)):
        yield
        return
    old = (holder.target_prior_mode, holder.target_prior.clone(),
           holder.target_prior_file)
    holder.set_target_prior(value)
    try:
        yield
    finally:
        (holder.target_prior_mode, prior, holder.target_prior_file) = old
        holder.target_prior = prior


@contextmanager
def scale_factor_set(holder: nn.Module, value: float) -> Iterator[None]:
    """Temporarily set ``holder.scale_factor`` (restored on exit)."""
    old = holder.scale_factor
    holder.scale_factor = value
    try:
        yield
    finally:
        holder.scale_factor = old
