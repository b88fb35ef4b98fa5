"""MMDeploy adapter: function rewriters that keep the prior correction.

MMDeploy exports a model through its own rewrites of the host's methods
(``EncoderDecoder.predict`` becomes ``extract_feat`` + ``decode_head.predict``,
for instance), which would drop the PEM and every post-hoc correction of an
mmnpe component. Importing this package registers rewriters for the mmnpe
methods so that the exported graph computes the corrected prediction. It is
imported by ``import mmnpe`` only where mmdeploy is installed
(``pip install -e ".[deploy]"``); see docs/user_guides/deployment.md.
"""
from . import mmseg_rewriters  # noqa: F401

__all__ = ['mmseg_rewriters']
