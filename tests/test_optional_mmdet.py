"""An mmseg / mmpretrain user needs no mmdet: with mmdet made unimportable,
``import mmnpe`` works, registers the segmentation and classification parts
and has no ``det``; nothing outside ``mmnpe.det`` imports mmdet."""
import ast
import glob
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

PROBE = r'''
import sys
sys.modules['mmdet'] = None  # "import mmdet" raises ImportError
import mmnpe
assert 'det' not in mmnpe.__all__ and not hasattr(mmnpe, 'det'), mmnpe.__all__
from mmseg.registry import MODELS as SEG
from mmpretrain.registry import MODELS as CLS
assert SEG.get('NPEEncoderDecoder') is not None
assert CLS.get('NPEClsHead') is not None
assert not any(m == 'mmdet' or m.startswith('mmdet.') for m in sys.modules
               if sys.modules[m] is not None)
print('ok')
'''


def test_import_mmnpe_without_mmdet():
    out = subprocess.run([sys.executable, '-c', PROBE],
                         cwd=REPO,
                         capture_output=True,
                         text=True,
                         env=dict(
                             os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('ok')


def test_only_mmnpe_det_imports_mmdet():
    offenders = []
    for path in glob.glob(
            osp.join(REPO, 'mmnpe', '**', '*.py'), recursive=True):
        if osp.join('mmnpe', 'det') in path:
            continue
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == 'mmdet' or n.startswith('mmdet.') for n in names):
                offenders.append(osp.relpath(path, REPO))
    assert not offenders
