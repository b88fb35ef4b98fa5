"""The CUDA smoke check refuses clearly where there is no CUDA device (it
runs on GPU machines only; see ``make cuda-smoke``)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from launch_helpers import REPO, tool_env

SCRIPT = osp.join(REPO, 'tools', 'misc', 'cuda_smoke.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CUDA device exists')
def test_refuses_without_cuda(tmp_path):
    out = subprocess.run([sys.executable, SCRIPT, '--work-dir',
                          str(tmp_path)],
                         capture_output=True,
                         text=True,
                         env=tool_env(),
                         timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert 'no CUDA device' in out.stderr
    assert 'torch.cuda.is_available() is False' in out.stderr
    assert not list(tmp_path.iterdir())  # nothing was started


def test_make_target_calls_it():
    with open(osp.join(REPO, 'Makefile')) as f:
        makefile = f.read()
    assert 'cuda-smoke: $(STAMP)\n\t$(PY) tools/misc/cuda_smoke.py' in (
        makefile)
