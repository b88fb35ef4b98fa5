"""``LVISMetric`` on numpy >= 1.24: the one name lvis 0.5.3 misses.

The LVIS API on the package index, ``lvis`` 0.5.3, accumulates precision
with ``np.cumsum(...).astype(dtype=np.float)`` (``lvis/eval.py``,
``LVISEval.accumulate``). numpy 1.20 deprecated the ``np.float`` alias of
the builtin ``float`` and numpy 1.24 removed it, so mmdet's ``LVISMetric``
raises ``AttributeError`` at its first evaluation. ``mmlvis``, the fork
that fixed it, is the one mmdet warns is deprecated.

The workaround gives the module ``lvis.eval``, and only it, a numpy
namespace that also has ``float`` (the builtin, exactly what ``np.float``
was): every other attribute is numpy's own, numpy itself is not changed and
no other module sees the alias. Nothing is copied from lvis, and the patch
does nothing on a numpy that still has ``np.float`` or on an lvis whose
``eval`` no longer uses numpy through the name ``np``.
"""
import types
from typing import Optional

import numpy


class _NumpyWithFloat(types.ModuleType):
    """numpy, seen through a module that adds the removed ``float`` alias."""

    float = float

    def __getattr__(self, name: str):
        return getattr(numpy, name)

    def __dir__(self):
        return sorted(set(dir(numpy)) | {'float'})


def patch_lvis_numpy(module: Optional[types.ModuleType] = None) -> bool:
    """Give ``lvis.eval`` a numpy namespace with ``float`` when numpy lacks
    it.

    Called when :mod:`mmnpe.det` is imported. Idempotent.

    Args:
        module (ModuleType, optional): The module whose global ``np`` to
            replace; None imports ``lvis.eval`` (nothing happens when the
            LVIS API is not installed). Defaults to None.

    Returns:
        bool: Whether the module now sees the compatible namespace (False:
        not needed, or lvis not installed).
    """
    if hasattr(numpy, 'float'):
        return False
    if module is None:
        try:
            import lvis.eval as module
        except ImportError:
            return False
    current = getattr(module, 'np', None)
    if isinstance(current, _NumpyWithFloat):
        return True
    if current is not numpy:
        return False
    module.np = _NumpyWithFloat('numpy')
    return True
