"""mmnpe: Neural Prior Estimation (NPE / NPE-LA) for OpenMMLab.

Importing the package registers every component: segmentation parts in
mmseg's registries, classification parts in mmpretrain's, and the shared
loss and hook in mmengine's root registries, which both scopes search.
Add ``custom_imports = dict(imports=['mmnpe'], allow_failed_imports=False)``
to a config.
"""
from .engine import register_safe_globals
from .version import __version__

# The one import-time side effect besides registration (documented in
# docs/advanced_guides/components.md): allowlist the types mmengine writes
# into checkpoints, so that `load_from` and `resume` work on torch >= 2.6
# with weights_only=True.
register_safe_globals()

from . import cls, engine, functional, seg  # noqa: E402,F401

__all__ = ['__version__', 'cls', 'engine', 'functional', 'seg']
