"""Writing analysis results."""
import json
import math
import os
import os.path as osp

import numpy as np


def _plain(obj):
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None
    (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dump_json(obj, path: str) -> None:
    """Write ``obj`` as indented JSON, creating the folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(_plain(obj), f, indent=2)
