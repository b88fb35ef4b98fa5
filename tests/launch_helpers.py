"""Running the tools as a user does, bounded: in this process (their
``main(argv)``, from the state a fresh interpreter starts with) or as
subprocesses and torchrun.

Every launch gets a wall-clock limit; on expiry the whole process group
(torchrun and its ranks) is killed, or the in-process run is interrupted,
and the test fails with the log tail, so a hung run fails the test instead
of hanging CI.
"""
import contextlib
import gc
import glob
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import os.path as osp
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
from typing import Dict, Iterator, List, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.utils import ManagerMixin

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


class ToolRun:
    """A finished tool run: its exit code and its output (stdout and stderr
    together), awaited like a :class:`Launch`."""

    def __init__(self, cmd: Sequence[str], returncode: int,
                 output: str) -> None:
        self.cmd = [str(c) for c in cmd]
        self.returncode = returncode
        self.output = output

    def wait(self, check: bool = True) -> str:
        """The output; asserts exit code 0 unless ``check=False``."""
        if check:
            assert self.returncode == 0, (
                f'exit code {self.returncode}: {" ".join(self.cmd)}\n'
                f'{self.output[-4000:]}')
        return self.output


class _ToolTimeout(BaseException):
    """Raised into an in-process tool run at its time limit (a
    BaseException, so that the tool's own ``except Exception`` does not
    swallow it)."""


# torch's seed of its default generator in a fresh interpreter.
_TORCH_FIRST_SEED = 67280421310721
# The warning filters of a fresh interpreter (no -W, no dev mode).
_FRESH_FILTERS = (
    ('default', DeprecationWarning, '__main__'),
    ('ignore', DeprecationWarning, None),
    ('ignore', PendingDeprecationWarning, None),
    ('ignore', ImportWarning, None),
    ('ignore', ResourceWarning, None),
)
# Second in which the last in-process run started (see _fresh_process_state).
_last_start = [0]


def _manager_classes() -> List[type]:
    """Every class that keeps named global instances (mmengine's
    ManagerMixin: DefaultScope, MessageHub, MMLogger, Visualizer and its
    subclasses, each with an instance dict of its own)."""
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _show_warning(message,
                  category,
                  filename,
                  lineno,
                  file=None,
                  line=None) -> None:
    """What a fresh interpreter does with a warning: print it to stderr
    (pytest records the warnings of a test instead)."""
    sys.stderr.write(
        warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _fresh_process_state(script: str, argv: Sequence[str]) -> Iterator[None]:
    """Run the body as if in a fresh ``python SCRIPT ARGV`` started by
    :class:`Launch`, and leave this process as it was.

    Reset for the run and restored after it: mmengine's global instances
    (default scope, message hubs, loggers, visualizers: a second run would
    otherwise get the first one's visualizer, with its save_dir, or its
    logger and log file), torch / numpy / Python random states, torch's
    deterministic, thread, default-dtype and grad-mode settings, the working
    directory (the repository, as :class:`Launch`), ``sys.argv``,
    ``sys.path`` (the script's folder first, then as :func:`tool_env`), the
    environment (:func:`tool_env`'s, and whatever the tool sets), the
    multiprocessing start method and OpenCV's threads (mmengine sets both),
    the warning filters (a fresh interpreter's, warnings printed) and the
    root logger. Not reset: imported modules and what they registered (a
    fresh interpreter imports the same ones).
    The loggers the run created are closed (their log files).
    """
    import cv2
    managers = _manager_classes()
    instances = {cls: dict(cls._instance_dict) for cls in managers}
    cwd, argv0, path = os.getcwd(), sys.argv, list(sys.path)
    environ = dict(os.environ)
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic)
    threads = torch.get_num_threads()
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    start_method = multiprocessing.get_start_method(allow_none=True)
    cv2_threads = cv2.getNumThreads()
    root = logging.getLogger()
    root_state = (root.level, list(root.handlers))
    # Runs starting in one second would share mmengine's timestamped
    # experiment name and log folder, which separate processes never do.
    while int(time.time()) == _last_start[0]:
        time.sleep(0.05)
    _last_start[0] = int(time.time())
    for cls in managers:
        cls._instance_dict.clear()
    os.chdir(REPO)
    sys.argv = [script, *argv]
    sys.path[:] = [osp.dirname(script), REPO, TESTS
                   ] + [p for p in path if p not in (REPO, TESTS)]
    os.environ.update(tool_env())
    torch.manual_seed(_TORCH_FIRST_SEED)
    np.random.seed()
    random.seed()
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, category, module in reversed(_FRESH_FILTERS):
                warnings.filterwarnings(
                    action, category=category, module=module or '')
            warnings.showwarning = _show_warning
            yield
    finally:
        for logger in MMLogger._instance_dict.values():
            if logger not in instances[MMLogger].values():
                for handler in logger.handlers:
                    handler.close()
        for cls in managers:
            cls._instance_dict.clear()
            cls._instance_dict.update(instances.get(cls, {}))
        os.chdir(cwd)
        sys.argv, sys.path[:] = argv0, path
        os.environ.clear()
        os.environ.update(environ)
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])
        torch.use_deterministic_algorithms(
            deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic \
            = cudnn
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        multiprocessing.set_start_method(start_method, force=True)
        cv2.setNumThreads(cv2_threads)
        root.setLevel(root_state[0])
        root.handlers[:] = root_state[1]
        gc.collect()


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the body after ``seconds`` (SIGALRM; only the main thread
    receives signals, elsewhere the body runs unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _ToolTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _exit_code(err: SystemExit) -> int:
    """The exit status the interpreter gives ``sys.exit(code)``."""
    if err.code is None:
        return 0
    if isinstance(err.code, int):
        return err.code
    print(err.code, file=sys.stderr)
    return 1


def _launcher(argv: Sequence[str]) -> str:
    """The ``--launcher`` of a tool's ``argv`` (its default: none)."""
    for i, arg in enumerate(argv):
        if arg.startswith('--launcher='):
            return arg.split('=', 1)[1]
        if arg == '--launcher' and i + 1 < len(argv):
            return argv[i + 1]
    return 'none'


def _tool_path(script: str) -> str:
    return script if osp.isabs(script) else osp.join(TOOLS, script)


def run_tool(script: str,
             argv: Sequence,
             in_process: bool = True,
             timeout: float = 240) -> ToolRun:
    """``python tools/SCRIPT ARGV...``, finished.

    In process (the default): the tool's ``main(argv)`` in this
    interpreter, which has torch and the hosts imported already, from a
    fresh process's state (:func:`_fresh_process_state`); its output is what
    it writes to ``sys.stdout`` / ``sys.stderr`` (mmengine's loggers, warnings,
    the traceback of an uncaught exception, as the interpreter prints it) and
    its exit code what the interpreter would give. ``in_process=False``: a
    subprocess (:class:`Launch`). Distributed launchers need a process each
    (``run_dist_train`` / ``run_dist_test``).

    Args:
        script (str): The tool, relative to ``tools/`` (``'train.py'``,
            ``'analysis/scale_sweep.py'``) or absolute.
        argv (Sequence): Its arguments (``str`` of each is passed).
        in_process (bool): Run ``main(argv)`` here. Defaults to True.
        timeout (float): Seconds before the run is stopped and the test
            fails.

    Returns:
        ToolRun: The exit code and output.
    """
    path = _tool_path(script)
    argv = [str(a) for a in argv]
    cmd = [sys.executable, path, *argv]
    if not in_process:
        launch = Launch(cmd, timeout)
        output = launch.wait(check=False)
        return ToolRun(cmd, launch.returncode, output)
    launcher = _launcher(argv)
    if launcher != 'none':
        raise ValueError(f'run_tool({script!r}): --launcher {launcher} '
                         'needs processes of its own (in_process=False, or '
                         'run_dist_train / run_dist_test), got argv '
                         f'{argv}')
    output = io.StringIO()
    with _fresh_process_state(path, argv), \
            contextlib.redirect_stdout(output), \
            contextlib.redirect_stderr(output):
        try:
            with _time_limit(timeout):
                spec = importlib.util.spec_from_file_location(
                    '_tool_' + osp.splitext(osp.basename(path))[0], path)
                tool = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(tool)
                tool.main(argv)
            code = 0
        except _ToolTimeout:
            code = None
        except SystemExit as err:
            code = _exit_code(err)
        except Exception:
            traceback.print_exc()
            code = 1
    if code is None:
        raise AssertionError(f'timed out after {timeout} s: {" ".join(cmd)}\n'
                             f'{output.getvalue()[-4000:]}')
    return ToolRun(cmd, code, output.getvalue())


def run_train(config: str,
              work_dir: str,
              *args,
              timeout: float = 240,
              in_process: bool = True) -> ToolRun:
    """``tools/train.py CONFIG --work-dir WORK_DIR ARGS...`` (see
    :func:`run_tool`)."""
    return run_tool(
        'train.py', [config, '--work-dir', work_dir, *args],
        in_process=in_process,
        timeout=timeout)


def run_test(config: str,
             checkpoint: str,
             work_dir: str,
             *args,
             timeout: float = 240,
             in_process: bool = True) -> ToolRun:
    """``tools/test.py CONFIG CHECKPOINT --work-dir WORK_DIR ARGS...`` (see
    :func:`run_tool`)."""
    return run_tool(
        'test.py', [config, checkpoint, '--work-dir', work_dir, *args],
        in_process=in_process,
        timeout=timeout)


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
