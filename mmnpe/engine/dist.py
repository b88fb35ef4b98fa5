"""Multi-process launch with ``--launcher pytorch`` on machines without CUDA.

mmengine 0.10's pytorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)``
before it initialises the process group, so ``torchrun ... --launcher
pytorch`` dies with "Found no NVIDIA driver" on a CPU-only machine even with
``env_cfg.dist_cfg.backend='gloo'``. Its ``Runner.wrap_model`` then passes
``device_ids=[LOCAL_RANK]`` to DDP, which DDP refuses for a module on the
CPU. Runner.setup_env leaves an already initialised process group alone and
``model_wrapper_cfg`` may name the device ids, so both are settled here
before the Runner is built; GPU runs are left to mmengine untouched.
"""
import datetime
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

# What torchrun (and tools/dist_train.sh, tools/dist_test.sh) export.
TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT')


def setup_cpu_distributed(cfg: Config) -> bool:
    """Start a gloo process group for a CUDA-less ``launcher='pytorch'`` run.

    Does nothing (returns False) unless ``cfg.launcher == 'pytorch'`` and no
    CUDA device is visible. Otherwise it initialises the default process
    group with gloo from torchrun's environment (``env://``, honouring
    ``env_cfg.dist_cfg.timeout`` in seconds), records the backend in
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
        RuntimeError: If torchrun's environment variables are missing.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    dist_cfg = cfg.env_cfg.get('dist_cfg') or dict()
    requested = dist_cfg.get('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'
    cfg.env_cfg['dist_cfg'] = dist_cfg

    if not torch_dist.is_initialized():
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
