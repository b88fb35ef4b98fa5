"""Multi-process launch with ``--launcher pytorch`` or ``--launcher slurm`` on
machines without CUDA.

mmengine 0.10's pytorch and slurm launchers call
``torch.cuda.set_device(LOCAL_RANK)`` before they initialise the process
group, so ``torchrun ... --launcher pytorch`` (or ``srun ... --launcher
slurm``) dies with "Found no NVIDIA driver" on a CPU-only machine even with
``env_cfg.dist_cfg.backend='gloo'``. Its ``Runner.wrap_model`` then passes
``device_ids=[LOCAL_RANK]`` to DDP, which DDP refuses for a module on the
CPU. Runner.setup_env leaves an already initialised process group alone and
``model_wrapper_cfg`` may name the device ids, so both are settled here
before the Runner is built; GPU runs are left to mmengine untouched.
"""
import datetime
import os
import subprocess

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

# What torchrun (and tools/dist_train.sh, tools/dist_test.sh) export.
TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT')
# What srun (tools/slurm_train.sh, tools/slurm_test.sh) sets in every task.
SLURM_ENV = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')


def _slurm_to_torchrun_env(dist_cfg: dict) -> None:
    """Export torchrun's variables from srun's, as mmengine's slurm launcher
    does: rank = ``SLURM_PROCID``, world size = ``SLURM_NTASKS``, local
    rank = ``SLURM_LOCALID``; master address ``MASTER_ADDR`` or the first
    host of ``SLURM_NODELIST`` (``scontrol show hostname``); port
    ``dist_cfg.port``, ``MASTER_PORT`` or 29500."""
    missing = [k for k in SLURM_ENV if k not in os.environ]
    if missing:
        raise RuntimeError(
            '--launcher slurm needs the environment srun sets; '
            f'{missing} are not set. Start with tools/slurm_train.sh '
            'PARTITION JOB_NAME CONFIG WORK_DIR (or srun ... python '
            'tools/train.py CONFIG --launcher slurm)')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        try:
            out = subprocess.run(['scontrol', 'show', 'hostname', nodes],
                                 capture_output=True,
                                 text=True)
        except FileNotFoundError:
            raise RuntimeError(
                '--launcher slurm without MASTER_ADDR needs scontrol to '
                f'find the first host of SLURM_NODELIST={nodes!r}; set '
                'MASTER_ADDR') from None
        hosts = out.stdout.split()
        if out.returncode != 0 or not hosts:
            raise RuntimeError(f'scontrol show hostname {nodes} gave no host '
                               f'({out.stderr.strip()}); set MASTER_ADDR')
        os.environ['MASTER_ADDR'] = hosts[0]
    if dist_cfg.get('port') is not None:
        os.environ['MASTER_PORT'] = str(dist_cfg['port'])
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_cpu_distributed(cfg: Config) -> bool:
    """Start a gloo process group for a CUDA-less ``launcher='pytorch'`` or
    ``launcher='slurm'`` run.

    Does nothing (returns False) unless ``cfg.launcher`` is 'pytorch' or
    'slurm' and no CUDA device is visible. Otherwise it initialises the
    default process group with gloo from torchrun's environment (``env://``;
    for slurm, from srun's, translated as mmengine's slurm launcher does),
    honouring ``env_cfg.dist_cfg.timeout`` in seconds, records the backend in
    ``cfg.env_cfg.dist_cfg``, and makes the DDP wrapper CPU-friendly:
    without ``model_wrapper_cfg`` it sets the one mmengine would build,
    ``MMDistributedDataParallel(broadcast_buffers=False,
    find_unused_parameters=cfg.find_unused_parameters or False)``, with
    ``device_ids=None``; a DDP ``model_wrapper_cfg`` gets
    ``device_ids=None`` unless it names them.

    Args:
        cfg (Config): The full config, modified in place.

    Returns:
        bool: Whether the CPU set-up was applied.

    Raises:
        RuntimeError: If torchrun's (srun's) environment variables are
            missing.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    dist_cfg = cfg.env_cfg.get('dist_cfg') or dict()
    requested = dist_cfg.get('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'
    cfg.env_cfg['dist_cfg'] = dist_cfg

    if not torch_dist.is_initialized():
        if launcher == 'slurm':
            _slurm_to_torchrun_env(dist_cfg)
        missing = [k for k in TORCHRUN_ENV if k not in os.environ]
        if missing:
            raise RuntimeError(
                "--launcher pytorch needs the environment torchrun sets; "
                f"{missing} are not set. Start with tools/dist_train.sh "
                "CONFIG NPROC (or torchrun --nproc_per_node=NPROC "
                "tools/train.py CONFIG --launcher pytorch)")
        kwargs = dict()
        if dist_cfg.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
        torch_dist.init_process_group(
            backend='gloo',
            init_method='env://',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **kwargs)
        print_log(
            f'No CUDA device: rank {torch_dist.get_rank()} of '
            f'{torch_dist.get_world_size()} joined a gloo process group '
            f'(dist_cfg.backend was {requested!r}); models stay on the CPU',
            logger='current')

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    else:
        wrapper_type = MODEL_WRAPPERS.get(
            wrapper_cfg.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper_cfg.setdefault('device_ids', None)
    return True
