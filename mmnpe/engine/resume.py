"""``--resume [PATH]`` on top of ``load_from``, and checks of the paths.

mmengine takes ``load_from`` as the checkpoint to resume from whenever
``resume=True``. Every PEM config sets ``load_from`` to the stock segmentor
it trains on, so a plain ``--resume`` tried to resume from the stock
checkpoint (which has no ``meta['epoch']``: ``KeyError: 'epoch'``). Here
``--resume`` means what mmseg's and mmpretrain's tools promise: continue
from the latest checkpoint of the work dir when there is one, and start
from ``load_from`` otherwise.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner.checkpoint import find_latest_checkpoint

AUTO = 'auto'


def _is_local(path: str) -> bool:
    return '://' not in path


def resolve_resume(cfg: Config, resume: Optional[str]) -> None:
    """Set ``cfg.resume`` and ``cfg.load_from`` for ``--resume [PATH]``.

    Args:
        cfg (Config): The full config (``work_dir`` set), modified in place.
        resume (str, optional): None: no resume (``load_from``, if set,
            only initialises the weights). ``'auto'`` (a bare
            ``--resume``): resume from the latest checkpoint recorded in
            ``work_dir`` (mmengine's ``last_checkpoint`` file) when there is
            one, else start from ``load_from``. A path: resume from it.

    Raises:
        FileNotFoundError: If ``resume`` names a local file that does not
            exist.
    """
    if resume is None:
        cfg.resume = False
        return
    if resume == AUTO:
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            print_log(
                f'--resume: no checkpoint in {cfg.work_dir} yet, so this is '
                'a fresh start from load_from='
                f'{cfg.get("load_from")!r}',
                logger='current')
            cfg.resume = False
        else:
            cfg.resume, cfg.load_from = True, latest
        return
    if _is_local(resume) and not osp.isfile(resume):
        raise FileNotFoundError(
            f'--resume {resume!r}: no such checkpoint file (a bare --resume '
            'continues from the latest checkpoint of the work dir)')
    cfg.resume, cfg.load_from = True, resume


def check_load_from(cfg: Config) -> None:
    """Refuse a local ``load_from`` that does not exist before anything is
    built (mmengine would only find out after building data and model).

    Raises:
        FileNotFoundError: Naming ``load_from`` and the path.
    """
    load_from = cfg.get('load_from')
    if load_from is None:
        return
    if not isinstance(load_from, str) or not load_from:
        raise TypeError('load_from must be None or a checkpoint path/URL, '
                        f'got {load_from!r}')
    if _is_local(load_from) and not osp.isfile(load_from):
        raise FileNotFoundError(
            f'load_from = {load_from!r}: no such checkpoint file (relative '
            'paths are resolved from the current directory); give the right '
            'one (tools/train.py: --cfg-options load_from=PATH; '
            'tools/test.py: its CHECKPOINT argument)')
