"""MMDeploy adapter: function rewriters that keep the prior correction.

MMDeploy exports a model through its own rewrites of the host's methods
(``EncoderDecoder.predict`` becomes ``extract_feat`` + ``decode_head.predict``,
for instance), which would drop the PEM and every post-hoc correction of an
mmnpe component, or mis-apply it. Importing this package registers, in
mmdeploy's ``FUNCTION_REWRITER``, rewriters for the mmnpe methods so that the
exported graph computes the corrected prediction, and the compatibility shim
mmdeploy 1.3.1 needs on this torch (:mod:`.compat`). It is imported by
``import mmnpe`` only where mmdeploy is installed
(``pip install -e ".[deploy]"``); see docs/user_guides/deployment.md.
"""
import importlib.util

from . import compat  # noqa: F401
from . import mmseg_rewriters  # noqa: F401

__all__ = ['compat', 'mmseg_rewriters']

if importlib.util.find_spec('mmdet') is not None:
    from . import mmdet_rewriters  # noqa: F401
    __all__.append('mmdet_rewriters')
