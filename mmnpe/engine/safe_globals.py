"""Let mmengine checkpoints load and resume on torch >= 2.6 safely.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine's
checkpoints (``message_hub`` in ``meta``) hold a few non-tensor objects.
Rather than turning ``weights_only`` off, which would execute arbitrary
pickles, exactly the globals mmengine writes are allowlisted:

- ``HistoryBuffer`` and the numpy array / scalar / dtype reconstructors;
- ``getattr``, which pickle protocol 2 uses for ``HistoryBuffer``'s
  statistics methods (``getattr(HistoryBuffer, 'min')``). Allowing the real
  ``getattr`` would let a checkpoint reach any attribute, so the name is
  mapped to :func:`history_buffer_getattr`, which resolves nothing else.
"""
import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def history_buffer_getattr(obj, name: str):
    """``getattr`` limited to HistoryBuffer's registered statistics methods.

    Raises:
        AttributeError: for any other object or attribute.
    """
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and (
            name in HistoryBuffer._statistics_methods
            or name in ('min', 'max', 'current', 'mean')):
        return getattr(obj, name)
    owner = obj.__name__ if isinstance(obj, type) else type(obj).__name__
    raise AttributeError(
        f'checkpoint asked for {owner}.{name}; mmnpe only '
        'allows HistoryBuffer statistics methods to be resolved while '
        'loading with weights_only=True')


def _mmengine_checkpoint_globals() -> list:
    multiarray = (np._core if hasattr(np, '_core') else np.core).multiarray
    allowed = [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar
    ]
    # np.dtype instances pickle as their concrete class on some versions.
    allowed += [
        type(np.dtype(t)) for t in (np.float64, np.float32, np.float16,
                                    np.int64, np.int32, np.uint8, np.bool_)
    ]
    allowed.append((history_buffer_getattr, 'builtins.getattr'))
    return allowed


def register_safe_globals() -> None:
    """Allowlist the globals of mmengine checkpoints for ``torch.load``."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # older torch loads them anyway
        add_safe_globals(_mmengine_checkpoint_globals())
