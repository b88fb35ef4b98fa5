"""Which decode heads can carry a PEM, checked from the config.

NPE-LA replaces ``decode_head.predict(x)`` by
``decode_head.predict_by_feat(z - alpha * eta)``, where ``z`` are the
per-class logits (N, C, h, w) the head computes from the features alone.
That is the stock prediction at ``alpha = 0`` only when the head's
``predict()`` is ``predict_by_feat(forward(x))`` (or its first output, for
the heads listed in ``FIRST_OUTPUT_PREDICTS``). Heads for which this does not
hold are refused when the segmentor is built, by class, before the backbone
is built: otherwise a PEM trains for a whole schedule and the model fails (or
silently predicts something else) at the first validation.
"""
import inspect
from typing import Dict, Optional, Tuple

from mmseg.models.decode_heads import DAHead, EncHead
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

# Heads whose forward() returns a tuple in eval mode and whose predict() uses
# its first element (DANet's ``pam_cam`` output, EncNet's logits beside the
# SE-loss vector).
FIRST_OUTPUT_PREDICTS = (DAHead.predict, EncHead.predict)

# (plain, cascade) registered names of a segmentor family, for the errors
# that point from one to the other.
SegmentorTypes = Tuple[str, str]
NPE_TYPES: SegmentorTypes = ('NPEEncoderDecoder', 'NPECascadeEncoderDecoder')

# Heads that pass every structural test but still cannot carry a PEM.
_REFUSED_BY_NAME: Dict[str, str] = {
    'DDRHead':
    ('DDRNet\'s backbone and head return a tuple of branch features in '
     'training mode and a single tensor in eval mode, so a PEM would be '
     'trained on other features (a frozen backbone stays in eval mode) '
     'than the ones the head is evaluated on'),
    'PIDHead':
    ('PIDNet\'s backbone and head return three branches (P, I, D) in '
     'training mode and a single tensor in eval mode, so a PEM would be '
     'trained on other features than the ones the head is evaluated on'),
    'VPDDepthHead':
    ('it regresses depth (one output channel), it has no per-class '
     'logits to correct'),
}


def _head_class(cfg) -> Optional[type]:
    """The class a decode head config builds, None when unknown (then
    ``MODELS.build`` raises its own error)."""
    if not hasattr(cfg, 'get'):
        return None
    head_type = cfg.get('type')
    if isinstance(head_type, type):
        return head_type
    if not isinstance(head_type, str):
        return None
    return MODELS.get(head_type)


def _required_args(method) -> int:
    """Number of required positional arguments, ``self`` excluded."""
    params = list(inspect.signature(method).parameters.values())[1:]
    return sum(1 for p in params
               if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD))


def _refuse(where: str, cls: type, why: str) -> TypeError:
    return TypeError(f'{where} {cls.__name__} cannot carry a PEM: {why}. '
                     'See docs/advanced_guides/supported_heads.md for the '
                     'heads that can.')


def check_plain_decode_head(cfg,
                            where: str = 'decode_head',
                            types: SegmentorTypes = NPE_TYPES) -> None:
    """Refuse a decode head whose per-class logits NPE-LA cannot correct.

    Args:
        cfg (dict): The decode head config (``type`` and its arguments).
        where (str): How the error names the head's place in the config.
        types (tuple[str, str]): The segmentor's registered name and that of
            its cascade twin, which the errors point to. Defaults to
            ``('NPEEncoderDecoder', 'NPECascadeEncoderDecoder')``.

    Raises:
        TypeError: The head is not a :class:`BaseDecodeHead`, is a cascade
            stage, needs more than the features in ``forward``, has a
            ``predict`` that is not ``predict_by_feat(forward(x))``, or is
            one of the heads refused by name (DDRNet, PIDNet, VPD).
    """
    plain, cascade = types
    if isinstance(cfg, (list, tuple)):
        raise TypeError(
            f'{where} is a list of {len(cfg)} heads (a cascade segmentor, '
            f"e.g. OCRNet or PointRend): use type='{cascade}' and keep "
            f'num_stages, instead of {plain}')
    cls = _head_class(cfg)
    if cls is None:
        return
    if not (isinstance(cls, type) and issubclass(cls, BaseDecodeHead)):
        raise _refuse(
            where, cls, 'it is not a BaseDecodeHead, so it has no '
            'forward(features) -> per-class logits (N, C, h, w) to correct '
            '(MaskFormer / Mask2Former heads need the data samples and '
            'predict per-query masks mixed by per-query class scores)')
    if issubclass(cls, BaseCascadeDecodeHead):
        raise _refuse(
            where, cls, 'it is a cascade stage (forward(inputs, '
            'prev_output)); it needs a CascadeEncoderDecoder, and so '
            f"type='{cascade}'")
    if cls.__name__ in _REFUSED_BY_NAME:
        raise _refuse(where, cls, _REFUSED_BY_NAME[cls.__name__])
    if _required_args(cls.forward) != 1:
        raise _refuse(
            where, cls, 'its forward needs more than the features '
            f'(forward{inspect.signature(cls.forward)}), so there are no '
            'per-class logits from features alone')
    if cls.predict is not BaseDecodeHead.predict and (
            cls.predict not in FIRST_OUTPUT_PREDICTS):
        raise _refuse(
            where, cls, 'its predict() is not predict_by_feat(forward(x)), '
            'so the logits NPE-LA would correct are not the ones it '
            'predicts from')


def check_cascade_decode_heads(cfgs,
                               where: str = 'decode_head',
                               types: SegmentorTypes = NPE_TYPES) -> None:
    """Refuse the stages of a cascade whose logits NPE-LA cannot correct.

    Stage 0 must pass :func:`check_plain_decode_head`; every later stage
    must be a :class:`BaseCascadeDecodeHead` (``forward(inputs,
    prev_output)``), and the last one must predict with
    ``predict_by_feat(forward(x, prev))`` (OCRNet's ``OCRHead`` does;
    PointRend's ``PointHead`` refines points by subdivision at test time).

    Args:
        cfgs (list[dict]): The decode head configs, one per stage.
        where (str): How the error names the heads' place in the config.
        types (tuple[str, str]): As in :func:`check_plain_decode_head`.

    Raises:
        TypeError: As above, naming the stage and the head.
    """
    plain, cascade = types
    if not isinstance(cfgs, (list, tuple)) or len(cfgs) < 2:
        raise TypeError(
            f'{where} of {cascade} must be a list of >= 2 decode heads (one '
            f"per stage); for a single head use type='{plain}', got "
            f'{type(cfgs).__name__}')
    check_plain_decode_head(cfgs[0], f'{where}[0]', types)
    for i, cfg in enumerate(cfgs[1:], start=1):
        cls = _head_class(cfg)
        if cls is None:
            continue
        name = f'{where}[{i}]'
        if not (isinstance(cls, type)
                and issubclass(cls, BaseCascadeDecodeHead)):
            raise _refuse(
                name, cls, 'a later cascade stage must be a '
                'BaseCascadeDecodeHead (forward(inputs, prev_output))')
        if i == len(cfgs) - 1 and (cls.predict
                                   is not BaseCascadeDecodeHead.predict):
            raise _refuse(
                name, cls, 'its predict() is not predict_by_feat(forward('
                'x, prev_output)) (PointRend refines the prediction point '
                'by point at test time), so the logits NPE-LA would correct '
                'are not the ones it predicts from')
