"""The tools run in the test process (``launch_helpers.run_tool``) as they run
in a fresh interpreter: each run starts from a fresh process's state and
leaves the test process as it found it, exit codes and output are the
interpreter's, and consecutive runs do not share mmengine's global
instances (a second ``tools/test.py --show-dir`` painted nothing when its
visualizer was the first run's)."""
import glob
import os
import os.path as osp
import random
import sys

import numpy as np
import pytest
import torch
from helpers import tiny_runner_cfg
from launch_helpers import REPO, run_test, run_tool, run_train
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import DefaultScope
from mmengine.visualization import Visualizer

# A tool that reports the state it starts from, then changes all of it.
PROBE = '''
import json
import os
import random
import sys

import numpy as np
import torch
from mmengine.logging import MessageHub, MMLogger, print_log
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.visualization import Visualizer


def main(argv=None):
    state = dict(
        argv=argv,
        sys_argv=sys.argv[1:],
        cwd=os.getcwd(),
        path0=sys.path[0],
        omp=os.environ.get('OMP_NUM_THREADS'),
        probe_env=os.environ.get('PROBE_SET'),
        torch_first=torch.rand(1).item(),
        threads=torch.get_num_threads(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        dtype=str(torch.get_default_dtype()),
        grad=torch.is_grad_enabled(),
        instances=sum(
            len(cls._instance_dict)
            for cls in (DefaultScope, MessageHub, MMLogger, Visualizer)))
    print(json.dumps(state))
    os.environ['PROBE_SET'] = '1'
    os.chdir('/')
    sys.argv.append('extra')
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    init_default_scope('mmpretrain')
    MessageHub.get_instance('probe_hub')
    Visualizer.get_instance('probe_vis')
    print_log('logged by the probe', logger='current')
    import warnings
    warnings.warn('warned by the probe')
    if argv and argv[0] == 'fail':
        raise ValueError('the probe failed on purpose')
    if argv and argv[0] == 'exit':
        sys.exit(3)
'''


@pytest.fixture
def probe(tmp_path):
    path = tmp_path / 'probe_tool.py'
    path.write_text(PROBE)
    return str(path)


def _state(output):
    import json
    return json.loads(output.splitlines()[0])


def _global_state():
    return dict(
        cwd=os.getcwd(),
        argv=list(sys.argv),
        path=list(sys.path),
        env=dict(os.environ),
        rng=(torch.get_rng_state(), np.random.get_state()[1].tolist(),
             random.getstate()),
        deterministic=torch.are_deterministic_algorithms_enabled(),
        threads=torch.get_num_threads(),
        dtype=torch.get_default_dtype(),
        grad=torch.is_grad_enabled(),
        instances={
            cls: dict(cls._instance_dict)
            for cls in (DefaultScope, MessageHub, MMLogger, Visualizer)
        })


def _same(a, b):
    assert a['cwd'] == b['cwd'] and a['argv'] == b['argv']
    assert a['path'] == b['path'] and a['env'] == b['env']
    assert torch.equal(a['rng'][0], b['rng'][0])
    assert a['rng'][1:] == b['rng'][1:]
    assert a['deterministic'] == b['deterministic']
    assert a['threads'] == b['threads']
    assert a['dtype'] == b['dtype'] and a['grad'] == b['grad']
    assert a['instances'] == b['instances']


def test_a_run_starts_fresh_and_leaves_the_process_as_it_was(probe):
    # State a previous test or run may have left behind.
    DefaultScope.get_instance('left_by_a_test', scope_name='mmseg')
    MessageHub.get_instance('left_by_a_test')
    torch.manual_seed(5)
    with torch.no_grad():
        before = _global_state()
        runs = [run_tool(probe, ['a', 1]) for _ in range(2)]
        _same(before, _global_state())
    first, second = (_state(run.wait()) for run in runs)
    # What a fresh `python PROBE a 1` from the repository sees.
    assert first == second
    assert first['argv'] == first['sys_argv'] == ['a', '1']
    assert first['cwd'] == REPO and first['path0'] == osp.dirname(probe)
    assert first['omp'] == '1' and first['threads'] == 1
    assert first['probe_env'] is None and not first['deterministic']
    assert first['dtype'] == 'torch.float32' and first['grad']
    assert first['instances'] == 0
    torch.manual_seed(67280421310721)  # torch's first seed in a new process
    assert first['torch_first'] == torch.rand(1).item()
    # The interpreter's output: the logger's and the warning's lines.
    log = runs[0].output
    assert 'logged by the probe' in log
    assert 'UserWarning: warned by the probe' in runs[1].output
    assert runs[0].returncode == 0


def test_exit_codes_and_tracebacks_are_the_interpreters(probe):
    failed = run_tool(probe, ['fail'])
    assert failed.returncode == 1
    assert failed.output.strip().splitlines()[-1] == (
        'ValueError: the probe failed on purpose')
    assert 'Traceback (most recent call last)' in failed.output
    assert run_tool(probe, ['exit']).returncode == 3
    # argparse refusing a flag: exit code 2, usage on stderr.
    bad = run_tool('train.py', ['--no-such-flag'])
    assert bad.returncode == 2 and 'usage: ' in bad.output
    with pytest.raises(AssertionError, match='exit code 2'):
        bad.wait()


def test_a_distributed_launcher_is_refused_in_process():
    for argv in (['--launcher', 'pytorch'], ['--launcher=slurm']):
        with pytest.raises(ValueError, match='needs processes of its own'):
            run_tool('train.py', ['cfg.py', *argv])
    assert run_tool('train.py', ['--launcher', 'none']).returncode == 2


def test_a_run_past_its_time_limit_fails_with_its_log(tmp_path):
    slow = tmp_path / 'slow_tool.py'
    slow.write_text('import time\n\n\ndef main(argv=None):\n'
                    "    print('started', flush=True)\n"
                    '    while True:\n        time.sleep(0.01)\n')
    with pytest.raises(
            AssertionError, match=r'timed out after 0.5 s(.|\n)*'
            'started'):
        run_tool(str(slow), [], timeout=0.5)


def test_consecutive_show_dir_runs_each_paint(tmp_path, synthetic_root):
    """Two trainings and three tests in one process, each with the
    visualizer, logger and log folder of its own: the second and third
    ``--show-dir`` paint into their own folders."""
    cfg = tiny_runner_cfg(
        str(tmp_path / 'unused'), synthetic_root, max_iters=1)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    cfg['default_hooks']['checkpoint']['interval'] = 1
    cfg['log_level'] = 'INFO'
    config = tmp_path / 'cfg.py'
    config.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    works = [tmp_path / f'train{i}' for i in range(2)]
    for work in works:
        run_train(config, work).wait()
    ckpt = works[1] / 'iter_1.pth'
    assert ckpt.exists()
    for i in range(3):
        show = tmp_path / f'show{i}'
        log = run_test(config, ckpt, tmp_path / f'test{i}', '--show-dir',
                       show).wait()
        assert 'mIoU' in log
        painted = glob.glob(str(show / '**' / '*.png'), recursive=True)
        assert len(painted) == 2, (i, painted)
    # One log file per run, each in its own run's folder.
    for i, work in enumerate(works):
        logs = glob.glob(str(work / '*' / '*.log'))
        assert len(logs) == 1, logs
        with open(logs[0]) as f:
            text = f.read()
        assert str(work) in text and str(works[1 - i]) not in text


@pytest.mark.parametrize('script', [
    'train.py', 'test.py', 'analysis/class_counts.py', 'analysis/classwise.py',
    'analysis/label_shift.py', 'analysis/prior_recovery.py',
    'analysis/scale_sweep.py'
])
def test_every_entry_point_parses_the_argv_it_is_given(script, monkeypatch,
                                                       capsys):
    """``main(argv)`` parses ``argv``, not the command line of the process
    that calls it."""
    import importlib.util
    path = osp.join(REPO, 'tools', script)
    spec = importlib.util.spec_from_file_location('entry_point', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, 'argv', [path, '--not-a-flag-of-any-tool'])
    with pytest.raises(SystemExit) as exit_:
        tool.main(['--help'])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith('usage: ')
