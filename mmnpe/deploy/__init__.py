"""MMDeploy adapter: function rewriters that keep the prior correction.

MMDeploy exports a model through its own rewrites of the host's methods,
which would drop or mis-apply an mmnpe component's correction. Importing
this package registers, in mmdeploy's ``FUNCTION_REWRITER``, the
compatibility shim mmdeploy 1.3.1 needs on this torch (:mod:`.compat`) and,
where mmdet is installed, the detection rewriters
(:mod:`.mmdet_rewriters`). It is imported by ``import mmnpe`` only where
mmdeploy is installed (``pip install -e ".[deploy]"``); see
docs/user_guides/deployment_detection.md.
"""
import importlib.util

from . import compat  # noqa: F401

__all__ = ['compat']

if importlib.util.find_spec('mmdet') is not None:
    from . import mmdet_rewriters  # noqa: F401
    __all__.append('mmdet_rewriters')
