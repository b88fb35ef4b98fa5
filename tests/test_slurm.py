"""tools/slurm_train.sh and tools/slurm_test.sh with a stand-in ``srun``.

No Slurm here: an ``srun`` on PATH records its arguments and, like srun,
starts the command once per task with SLURM_PROCID / SLURM_LOCALID /
SLURM_NTASKS / SLURM_NODELIST set (an ``scontrol`` answers the first host).
The scripts' argument handling and the exact srun command are checked
without running anything; one ImageNet-LT config then trains on 2 tasks
through tools/train.py --launcher slurm (the lr scaled by --auto-scale-lr
for the total batch of 2 x 2) and its checkpoint is tested on 2 tasks
through tools/test.py --launcher slurm, with the metrics of a
single-process test.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from launch_helpers import REPO, TOOLS, Launch, free_port, metrics
from lt_trees import (cli_words, config_counts, smoke_options, tool_test_args,
                      write_lt_tree)
from mmengine.config import Config

CONFIG = osp.join(REPO, 'configs', 'imagenet_lt',
                  'ce_resnet50_180e_imagenet-lt.py')

FAKE_SRUN = '''#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ['FAKE_SRUN_LOG'], 'w') as f:
    json.dump(dict(args=args, pythonpath=os.environ.get('PYTHONPATH')), f)
if os.environ.get('FAKE_SRUN_DRY'):
    sys.exit(0)
i, opts = 0, dict()
while i < len(args) and args[i].startswith('-'):
    if args[i] == '-p':
        opts['-p'] = args[i + 1]
        i += 2
        continue
    key, _, value = args[i].partition('=')
    opts[key] = value
    i += 1
ntasks, per_node = int(opts['--ntasks']), int(opts['--ntasks-per-node'])
procs = []
for rank in range(ntasks):
    env = dict(os.environ, SLURM_PROCID=str(rank),
               SLURM_LOCALID=str(rank % per_node), SLURM_NTASKS=str(ntasks),
               SLURM_NODELIST='fake-node[1-2]',
               SLURM_JOB_NAME=opts['--job-name'])
    env.pop('MASTER_ADDR', None)
    procs.append(subprocess.Popen(args[i:], env=env))
sys.exit(max(p.wait() for p in procs))
'''
FAKE_SCONTROL = ('#!/bin/sh\n'
                 'echo "$@" >> "$FAKE_SCONTROL_LOG"\n'
                 'echo 127.0.0.1\n')


@pytest.fixture
def slurm_bin(tmp_path):
    """A folder holding the stand-in ``srun`` and ``scontrol``."""
    bin_dir = tmp_path / 'slurm_bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN.format(python=sys.executable)),
                       ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _env(slurm_bin, tmp_path, **extra):
    return dict(
        PATH=f'{slurm_bin}:{os.environ["PATH"]}',
        FAKE_SRUN_LOG=str(tmp_path / 'srun.json'),
        FAKE_SCONTROL_LOG=str(tmp_path / 'scontrol.log'),
        **{
            k: str(v)
            for k, v in extra.items()
        })


def dry_run(script, args, slurm_bin, tmp_path, **env):
    """Run ``script`` with a recording srun that starts nothing."""
    full_env = dict(os.environ)
    full_env.update(
        _env(slurm_bin, tmp_path, FAKE_SRUN_DRY=1, PYTHON='python3', **env))
    for key in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS'):
        if key not in env:
            full_env.pop(key, None)
    proc = subprocess.run(['bash', osp.join(TOOLS, script), *args],
                          env=full_env,
                          capture_output=True,
                          text=True,
                          timeout=60)
    log = tmp_path / 'srun.json'
    recorded = json.loads(log.read_text()) if log.exists() else None
    return proc, recorded


def test_train_script_runs_srun_with_the_stock_arguments(slurm_bin, tmp_path):
    proc, rec = dry_run(
        'slurm_train.sh',
        ['gpu', 'npe-lt', 'cfg.py', 'work/x', '--amp', '--cfg-options', 'a=1'],
        slurm_bin,
        tmp_path,
        GPUS=16,
        SRUN_ARGS='--quotatype=auto --exclusive')
    assert proc.returncode == 0, proc.stderr
    assert rec['args'] == [
        '-p', 'gpu', '--job-name=npe-lt', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--exclusive', 'python3', '-u',
        osp.join(TOOLS, 'train.py'), 'cfg.py', '--work-dir=work/x',
        '--launcher=slurm', '--amp', '--cfg-options', 'a=1'
    ]
    # This checkout first on the path: its mmnpe is the one imported.
    assert rec['pythonpath'].split(':')[0] == osp.join(TOOLS, '..')
    # The command is printed (set -x), as the stock scripts do.
    assert 'srun -p gpu' in proc.stderr


def test_test_script_passes_the_checkpoint(slurm_bin, tmp_path):
    proc, rec = dry_run(
        'slurm_test.sh', ['gpu', 'eval', 'cfg.py', 'ckpt.pth', '--out', 'p'],
        slurm_bin,
        tmp_path,
        GPUS=2,
        GPUS_PER_NODE=2,
        CPUS_PER_TASK=3)
    assert proc.returncode == 0, proc.stderr
    assert rec['args'] == [
        '-p', 'gpu', '--job-name=eval', '--gres=gpu:2', '--ntasks=2',
        '--ntasks-per-node=2', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        'python3', '-u',
        osp.join(TOOLS, 'test.py'), 'cfg.py', 'ckpt.pth', '--launcher=slurm',
        '--out', 'p'
    ]


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
@pytest.mark.parametrize('args, env, message', [
    (['gpu', 'job', 'cfg.py'], {}, r'usage: .*slurm_t\w+\.sh PARTITION '
     r'JOB_NAME CONFIG (WORK_DIR|CHECKPOINT)'),
    (['gpu', 'job', 'cfg.py', 'x'
      ], dict(GPUS='eight'), "GPUS must be a positive integer, got 'eight'"),
    (['gpu', 'job', 'cfg.py', 'x'], dict(GPUS_PER_NODE='0'),
     "GPUS_PER_NODE must be a positive integer, got '0'"),
    (['gpu', 'job', 'cfg.py', 'x'], dict(CPUS_PER_TASK='-5'),
     "CPUS_PER_TASK must be a positive integer, got '-5'"),
    (['gpu', 'job', 'cfg.py', 'x'], dict(GPUS='4'),
     'GPUS=4 is fewer than GPUS_PER_NODE=8; set GPUS_PER_NODE=4 for a '
     'single-node job'),
])
def test_bad_arguments_are_refused_before_srun(script, args, env, message,
                                               slurm_bin, tmp_path):
    import re
    proc, rec = dry_run(script, args, slurm_bin, tmp_path, **env)
    assert proc.returncode == 2
    assert re.search(message, proc.stderr), proc.stderr
    assert rec is None  # srun never started


def test_imagenet_lt_trains_and_tests_on_two_slurm_tasks(slurm_bin, tmp_path):
    tree = write_lt_tree(
        str(tmp_path), 'imagenet_lt', config_counts('imagenet_lt'))
    options = smoke_options(tree.root, save_checkpoint=True)
    # The optimizer state records the lr that --auto-scale-lr set.
    options['default_hooks.checkpoint.save_optimizer'] = True
    options['env_cfg.dist_cfg.timeout'] = 120
    work = tmp_path / 'train'
    env = _env(
        slurm_bin, tmp_path, GPUS=2, GPUS_PER_NODE=2, MASTER_PORT=free_port())
    out = Launch([
        'bash',
        osp.join(TOOLS, 'slurm_train.sh'), 'cpu', 'lt-ce', CONFIG,
        str(work), '--auto-scale-lr', '--cfg-options', *cli_words(options)
    ], 600, **env).wait()
    # Both tasks joined one group of 2 (mmengine's runtime summary).
    assert 'Distributed launcher: slurm' in out
    assert 'Distributed training: True' in out
    assert 'rank 0 of 2 joined a gloo process group' in out
    assert (tmp_path / 'scontrol.log').read_text().split('\n')[0] == (
        'show hostname fake-node[1-2]')
    ckpt = torch.load(
        work / 'iter_1.pth', map_location='cpu', weights_only=True)
    # lr 0.1 is for a total batch of 256; 2 tasks x 2 images -> 0.1 * 4/256.
    lrs = [g['lr'] for g in ckpt['optimizer']['param_groups']]
    assert lrs == [pytest.approx(0.1 * 4 / 256)] * len(lrs)

    test_dir = tmp_path / 'test'
    env['MASTER_PORT'] = str(free_port())
    Launch([
        'bash',
        osp.join(TOOLS, 'slurm_test.sh'), 'cpu', 'lt-ce-test', CONFIG,
        str(work / 'iter_1.pth'), '--work-dir',
        str(test_dir), '--cfg-options', *cli_words(options)
    ], 600, **env).wait()
    two_tasks = metrics(str(test_dir))

    from mmnpe.cls.cli import run_test
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(options)
    one = run_test(
        cfg,
        tool_test_args(CONFIG, str(work / 'iter_1.pth'), tmp_path / 'single'))
    for key in ('lt/top1', 'lt/many', 'lt/medium', 'lt/few'):
        assert two_tasks[key] == pytest.approx(one[key])
    assert Config.fromfile(CONFIG).test_dataloader.dataset.ann_file == (
        'ImageNet_LT_test.txt')
