"""mmnpe: Neural Prior Estimation (NPE / NPE-LA) for OpenMMLab.

Importing the package registers every component: segmentation parts in
mmseg's registries, classification parts in mmpretrain's, detection parts
in mmdet's (only where mmdet is installed: ``pip install mmnpe[det]``), and
the shared loss and hook in mmengine's root registries, which every scope
searches. Add ``custom_imports = dict(imports=['mmnpe'],
allow_failed_imports=False)`` to a config.
"""
import importlib.util

from .engine import register_safe_globals
from .version import __version__

# The import-time side effects besides registration (documented in
# docs/advanced_guides/components.md): allowlist the types mmengine writes
# into checkpoints, so that `load_from` and `resume` work on torch >= 2.6
# with weights_only=True; and (mmnpe.det, only with mmdet) give lvis 0.5.3
# the numpy alias it needs on numpy >= 1.24.
register_safe_globals()

from . import cls, engine, functional, seg  # noqa: E402,F401

__all__ = ['__version__', 'cls', 'engine', 'functional', 'seg']

# mmseg / mmpretrain users need no mmdet; where it is installed, a broken
# mmdet raises here rather than silently dropping the detection parts.
if importlib.util.find_spec('mmdet') is not None:
    from . import det  # noqa: E402,F401
    __all__.append('det')

# The mmdeploy rewriters (mmnpe.deploy), only where mmdeploy is installed.
if importlib.util.find_spec('mmdeploy') is not None:
    from . import deploy  # noqa: E402,F401
    __all__.append('deploy')
