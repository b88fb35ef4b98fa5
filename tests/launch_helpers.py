"""Running the tools as a user does (subprocesses, torchrun), bounded.

Every launch gets a wall-clock limit; on expiry the whole process group
(torchrun and its ranks) is killed and the test fails with the log tail, so
a hung rank fails the test instead of hanging CI.
"""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
from typing import Dict, List, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(REPO, 'tests')
TOOLS = osp.join(REPO, 'tools')
DEMO = osp.join(REPO, 'configs', 'demo')
SEG_BASELINE = osp.join(DEMO, 'fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_NPE = osp.join(DEMO, 'npe_fcn_unet-tiny_synthetic-lt-64x64.py')
CLS_NPE_K16 = osp.join(DEMO, 'npe-la-k16_resnet32_digits-lt.py')
# Seconds a gloo collective may wait before a rank gives up (instead of the
# default 30 min), set through the config as a user would.
DIST_TIMEOUT = 60


def free_port() -> int:
    """A TCP port that was free a moment ago (bound by the OS, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_env(**extra) -> Dict[str, str]:
    """The environment of a launched tool: this tree (and the tests' probe
    module) first on the path, the interpreter running the tests, one
    thread per process (2 cores are shared by all ranks)."""
    env = dict(os.environ)
    path = [REPO, TESTS
            ] + [p for p in env.get('PYTHONPATH', '').split(':') if p]
    env.update(
        PYTHONPATH=':'.join(path),
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1')
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Launch:
    """One launched command, started at once, awaited with :meth:`wait`."""

    def __init__(self, cmd: Sequence[str], timeout: float, **env) -> None:
        self.cmd = [str(c) for c in cmd]
        self.timeout = timeout
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=REPO,
            env=tool_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True)

    def wait(self, check: bool = True) -> str:
        """The combined output; asserts exit code 0 unless ``check=False``.
        """
        try:
            out, _ = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
            raise AssertionError(
                f'timed out after {self.timeout} s: {" ".join(self.cmd)}\n'
                f'{out[-4000:]}') from None
        if check:
            assert self.proc.returncode == 0, (
                f'exit code {self.proc.returncode}: {" ".join(self.cmd)}\n'
                f'{out[-4000:]}')
        return out

    @property
    def returncode(self) -> int:
        return self.proc.returncode


def run_train(config: str,
              work_dir: str,
              *args,
              timeout: float = 240) -> Launch:
    return Launch([
        sys.executable,
        osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir, *args
    ], timeout)


def run_test(config: str,
             checkpoint: str,
             work_dir: str,
             *args,
             timeout: float = 240) -> Launch:
    return Launch([
        sys.executable,
        osp.join(TOOLS, 'test.py'), config, checkpoint, '--work-dir', work_dir,
        *args
    ], timeout)


def run_dist_train(config: str,
                   nproc: int,
                   work_dir: str,
                   *args,
                   timeout: float = 300) -> Launch:
    return Launch([
        'bash',
        osp.join(TOOLS, 'dist_train.sh'), config, nproc, '--work-dir',
        work_dir, *args
    ],
                  timeout,
                  PORT=free_port())


def run_dist_test(config: str,
                  checkpoint: str,
                  nproc: int,
                  work_dir: str,
                  *args,
                  timeout: float = 300) -> Launch:
    return Launch([
        'bash',
        osp.join(TOOLS, 'dist_test.sh'), config, checkpoint, nproc,
        '--work-dir', work_dir, *args
    ],
                  timeout,
                  PORT=free_port())


def write_config(path: str, base: str, **keys) -> str:
    """A config file inheriting ``base`` and setting ``keys`` (repr'd)."""
    lines = [f'_base_ = {base!r}\n']
    lines += [f'{k} = {v!r}\n' for k, v in keys.items()]
    with open(path, 'w') as f:
        f.writelines(lines)
    return path


def metrics(work_dir: str) -> dict:
    """The metrics tools/test.py logged (mmengine's ``<stamp>.json``)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    assert files, f'no metrics json under {work_dir}'
    with open(files[-1]) as f:
        return json.loads(f.readlines()[-1])


def state_dict(path: str) -> Dict[str, torch.Tensor]:
    """A checkpoint's weights, loaded as a user's run would
    (``weights_only=True``)."""
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt.get('state_dict', ckpt)


def differing(a: Dict[str, torch.Tensor],
              b: Dict[str, torch.Tensor],
              keys=None) -> List[str]:
    """Keys whose tensors are not bit-identical (or missing on one side)."""
    keys = sorted(set(a) | set(b)) if keys is None else keys
    return [
        k for k in keys
        if k not in a or k not in b or not torch.equal(a[k], b[k])
    ]


def stock_seg_checkpoint(path: str) -> str:
    """What a trained stock segmentor's checkpoint holds: the demo
    baseline's weights, its BN statistics away from their initial values
    (so any drift of a frozen buffer shows; it also makes the predictions
    vary over the classes, so that equal test metrics are not vacuous)."""
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(SEG_BASELINE).model)
    model.init_weights()
    g = torch.Generator().manual_seed(123)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean'):
            state[key] = value + 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith('running_var'):
            state[key] = value * (1 +
                                  0.5 * torch.rand(value.shape, generator=g))
    torch.save(dict(meta=dict(), state_dict=state), path)
    return path


def seg_data(root: str) -> dict:
    """Dataloader overrides pointing the demo config at ``root``."""
    loader = dict(dataset=dict(data_root=root))
    return dict(
        train_dataloader=dict(batch_size=2, **loader),
        val_dataloader=loader,
        test_dataloader=loader)
