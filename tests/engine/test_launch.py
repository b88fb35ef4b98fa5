"""What the tools do around the Runner: CPU process groups, --resume,
default hooks, readable errors, random states in checkpoints."""
import os
import random
import traceback

import numpy as np
import pytest
import torch
from launch_helpers import free_port
from mmengine.config import Config
from mmengine.registry import HOOKS

from mmnpe.engine import (DEFAULT_HOOKS, add_default_hooks, check_load_from,
                          close_registered_names, resolve_resume,
                          setup_cpu_distributed)
from mmnpe.engine.hooks.random_state_hook import _capture, _restore


def _draws():
    return (random.random(), np.random.rand(3).tolist(),
            torch.rand(3).tolist())


# -- --resume
def _work_dir_with_checkpoint(tmp_path, name='iter_2.pth'):
    ckpt = tmp_path / name
    torch.save(dict(state_dict=dict(), meta=dict()), ckpt)
    # What mmengine's CheckpointHook records after each save.
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    return str(ckpt)


def test_resume_auto_prefers_the_work_dirs_latest_checkpoint(tmp_path):
    latest = _work_dir_with_checkpoint(tmp_path)
    cfg = Config(dict(work_dir=str(tmp_path), load_from='stock.pth'))
    resolve_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from == latest


def test_resume_auto_without_checkpoint_starts_from_load_from(tmp_path):
    cfg = Config(dict(work_dir=str(tmp_path), load_from='stock.pth'))
    resolve_resume(cfg, 'auto')
    # mmengine would resume *from* load_from (KeyError: 'epoch').
    assert cfg.resume is False and cfg.load_from == 'stock.pth'


def test_resume_path_and_no_resume(tmp_path):
    path = _work_dir_with_checkpoint(tmp_path, 'epoch_3.pth')
    cfg = Config(dict(work_dir=str(tmp_path / 'other'), load_from='x.pth'))
    resolve_resume(cfg, path)
    assert cfg.resume is True and cfg.load_from == path
    cfg = Config(dict(work_dir=str(tmp_path), load_from='x.pth'))
    resolve_resume(cfg, None)
    assert cfg.resume is False and cfg.load_from == 'x.pth'


def test_check_load_from_accepts_files_urls_and_none(tmp_path):
    path = _work_dir_with_checkpoint(tmp_path)
    for load_from in (None, path, 'https://download.openmmlab.com/x.pth'):
        check_load_from(Config(dict(load_from=load_from)))


# -- CPU process groups
def test_cpu_setup_leaves_other_launchers_alone():
    for launcher in ('none', 'mpi'):
        cfg = Config(dict(launcher=launcher))
        assert setup_cpu_distributed(cfg) is False
        assert 'model_wrapper_cfg' not in cfg


def test_cpu_setup_joins_gloo_and_makes_ddp_cpu_friendly(monkeypatch):
    import torch.distributed as dist
    assert not torch.cuda.is_available()
    for key, value in dict(
            RANK=0,
            WORLD_SIZE=1,
            LOCAL_RANK=0,
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=free_port()).items():
        monkeypatch.setenv(key, str(value))
    cfg = Config(
        dict(
            launcher='pytorch',
            find_unused_parameters=True,
            env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=30))))
    try:
        assert setup_cpu_distributed(cfg) is True
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=True,
            device_ids=None)
        # A second call (tools/test.py after training) joins nothing new;
        # a DDP wrapper the user configured keeps its settings.
        cfg2 = Config(
            dict(
                launcher='pytorch',
                model_wrapper_cfg=dict(
                    type='MMDistributedDataParallel', broadcast_buffers=True)))
        assert setup_cpu_distributed(cfg2) is True
        assert cfg2.model_wrapper_cfg == dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=True,
            device_ids=None)
    finally:
        dist.destroy_process_group()


def _fake_scontrol(tmp_path, monkeypatch, host='127.0.0.1'):
    """An ``scontrol`` on PATH that answers ``show hostname NODES`` with
    ``host`` (what Slurm answers on a cluster) and records its arguments."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script = bin_dir / 'scontrol'
    script.write_text('#!/bin/sh\n'
                      f'echo "$@" > {tmp_path / "scontrol_args"}\n'
                      f'echo {host}\necho other-host\n')
    script.chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}:{os.environ["PATH"]}')
    return tmp_path / 'scontrol_args'


def test_cpu_setup_joins_gloo_from_srun_environment(tmp_path, monkeypatch):
    """--launcher slurm without CUDA: torchrun's variables are derived from
    srun's as mmengine's slurm launcher derives them (master: the first
    host of SLURM_NODELIST), then the gloo group starts."""
    import torch.distributed as dist
    assert not torch.cuda.is_available()
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR'):
        monkeypatch.delenv(key, raising=False)
    for key, value in dict(
            SLURM_PROCID=0,
            SLURM_NTASKS=1,
            SLURM_LOCALID=0,
            SLURM_NODELIST='node[3-4]',
            MASTER_PORT=free_port()).items():
        monkeypatch.setenv(key, str(value))
    args = _fake_scontrol(tmp_path, monkeypatch)
    cfg = Config(dict(launcher='slurm'))
    try:
        assert setup_cpu_distributed(cfg) is True
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert args.read_text().split() == ['show', 'hostname', 'node[3-4]']
        assert (os.environ['MASTER_ADDR'], os.environ['RANK'],
                os.environ['WORLD_SIZE'],
                os.environ['LOCAL_RANK']) == ('127.0.0.1', '0', '1', '0')
        assert cfg.model_wrapper_cfg.device_ids is None
    finally:
        dist.destroy_process_group()


def test_cpu_slurm_setup_names_what_is_missing(tmp_path, monkeypatch):
    for key in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(
            RuntimeError,
            match=r"--launcher slurm needs the environment srun sets; "
            r"\['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'\] are not "
            r'set. Start with tools/slurm_train.sh'):
        setup_cpu_distributed(Config(dict(launcher='slurm')))
    monkeypatch.setenv('SLURM_PROCID', '0')
    monkeypatch.setenv('SLURM_NTASKS', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node1')
    monkeypatch.delenv('MASTER_ADDR', raising=False)
    monkeypatch.setenv('PATH', str(tmp_path))  # no scontrol
    with pytest.raises(
            RuntimeError,
            match="needs scontrol to find the first host of "
            "SLURM_NODELIST='node1'; set MASTER_ADDR"):
        setup_cpu_distributed(Config(dict(launcher='slurm')))


def test_slurm_launcher_reaches_mmengine_on_gpu_machines(monkeypatch):
    """With CUDA, --launcher slurm is left to mmengine: the Runner that
    build_runner (tools/train.py, tools/test.py) builds calls mmengine's
    init_dist('slurm', ...) with the config's dist_cfg."""
    import mmengine.runner.runner as runner_module

    from mmnpe.engine import build_runner
    calls = []

    class Reached(Exception):
        pass

    def init_dist(launcher, **kwargs):
        calls.append((launcher, kwargs))
        raise Reached

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(runner_module, 'init_dist', init_dist)
    cfg = Config(
        dict(
            launcher='slurm',
            work_dir='unused',
            model=dict(type='ToyModel'),
            env_cfg=dict(dist_cfg=dict(backend='nccl', port=29511))))
    with pytest.raises(Reached):
        build_runner(cfg)
    assert calls == [('slurm', dict(backend='nccl', port=29511))]
    assert 'model_wrapper_cfg' not in cfg


# -- default hooks
def test_default_hooks_are_added_once_and_keep_user_settings():
    cfg = Config(
        dict(custom_hooks=[
            dict(type='FrozenBackboneHook'),
            dict(type='InputCheckHook', check_batches=False)
        ]))
    add_default_hooks(cfg)
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['FrozenBackboneHook', 'InputCheckHook', 'RandomStateHook']
    assert cfg.custom_hooks[1]['check_batches'] is False
    add_default_hooks(cfg)
    assert len(cfg.custom_hooks) == 3
    empty = Config(dict())
    add_default_hooks(empty)
    assert [h['type']
            for h in empty.custom_hooks] == [h['type'] for h in DEFAULT_HOOKS]
    for hook in DEFAULT_HOOKS:
        HOOKS.build(dict(hook))


# -- readable unknown components
def test_close_registered_names_ranks_typos_first():
    from mmseg.registry import MODELS
    assert close_registered_names('PEMFCNHaed', MODELS)[0] == 'PEMFCNHead'
    assert close_registered_names('fcnhead', MODELS)[0] == 'FCNHead'
    # Found in another scope: offered with its scope prefix.
    assert 'mmpretrain.CifarResNet' in close_registered_names(
        'CifarResnet', MODELS)
    assert close_registered_names('Zzzzzzzzzz', MODELS) == []


# -- random states
def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    _draws()
    path = tmp_path / 'state.pth'
    torch.save(dict(meta=dict(random_state=_capture())), path)
    expected = _draws()
    _draws()
    state = torch.load(path, weights_only=True)['meta']['random_state']
    _restore(state, numpy_and_python=True)
    assert _draws() == expected


def test_iteration_based_restore_leaves_numpy_and_python_alone():
    torch.manual_seed(2)
    state = _capture()
    expected_torch = torch.rand(3).tolist()
    random.seed(5), np.random.seed(5)
    py, npy = random.random(), np.random.rand()
    random.seed(5), np.random.seed(5)
    _restore(state, numpy_and_python=False)
    assert torch.rand(3).tolist() == expected_torch
    assert (random.random(), np.random.rand()) == (py, npy)


def test_validation_leaves_the_generators_alone():
    from mmnpe.engine import RandomStateHook
    hook = RandomStateHook()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    expected = _draws()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    hook.before_val(None)
    _draws(), _draws()  # what a validation might draw
    hook.after_val(None)
    assert _draws() == expected


def test_unscoped_registry_messages_use_the_default_scope():
    """mmengine's runner and iteration-converted scheduler builders name no
    scope ("X is not in the parameter scheduler registry")."""
    from mmnpe.engine.error_hints import explain_unknown_component
    err = KeyError('MultiStepLr is not in the parameter scheduler '
                   'registry. '
                   'Please check whether the value of `MultiStepLr` is '
                   'correct')
    readable = explain_unknown_component(err)
    assert isinstance(readable, KeyError)
    assert str(readable).startswith(
        "type='MultiStepLr' is not in the mmseg::parameter scheduler "
        'registry')
    assert "'MultiStepLR'" in str(readable)
    # Any other KeyError is left alone.
    assert explain_unknown_component(KeyError('epoch')) is None


def _failing_build():
    """What mmengine raises deep inside a build for an unknown type."""
    raise KeyError('PEMFCNHaed is not in the mmseg::model registry. '
                   'Please check whether the value of `PEMFCNHaed` is '
                   'correct or it was registered as expected.')


def test_readable_errors_keep_the_original_chained():
    """The readable error names the nearest registered names and keeps the
    original as its cause, so the traceback still shows the frame where the
    build failed."""
    from mmnpe.engine import UnknownComponentError, error_hints
    with pytest.raises(UnknownComponentError) as info:
        with error_hints():
            _failing_build()
    err = info.value
    assert "'PEMFCNHead'" in str(err)
    assert isinstance(err.__cause__, KeyError)
    shown = ''.join(traceback.format_exception(err))
    assert 'in _failing_build' in shown
    assert 'The above exception was the direct cause' in shown
