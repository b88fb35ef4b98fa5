import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.dist import broadcast, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.registry import HOOKS

#: Key under ``checkpoint['meta']`` marking a checkpoint written by a stage-2
#: run (its re-initialised modules have been trained since).
META_KEY = 'mmnpe_stage_two'


def reinit_module(module: nn.Module) -> None:
    """Re-initialise ``module`` in place as if it had just been built.

    First every submodule's own ``reset_parameters()`` (PyTorch's default
    init, which is also what BN's running statistics are reset by), then
    MMEngine's ``init_weights()`` so that ``init_cfg`` wins where given
    (``LinearClsHead``: N(0, 0.01), bias 0). ``BaseModule`` refuses a second
    ``init_weights()`` (it only logs a warning), so its "initialised" flags
    are cleared first. Parameters keep their identity: the optimizer, built
    before any hook runs, still holds them.

    Args:
        module (nn.Module): The module to re-initialise.
    """
    for m in module.modules():
        reset = getattr(m, 'reset_parameters', None)
        if callable(reset):
            reset()
    for m in module.modules():
        if isinstance(m, BaseModule):
            m._is_init = False
    if callable(getattr(module, 'init_weights', None)):
        module.init_weights()


def _is_remote(path: str) -> bool:
    return '://' in path and not path.startswith('file://')


# Registered in mmengine's root registry: mmseg and mmpretrain configs find it.
@HOOKS.register_module()
class StageTwoHook(Hook):
    """Stage 2 of a two-stage long-tail method (cRT, IWB): check that a
    stage-1 checkpoint is loaded and re-initialise modules after loading it.

    When MMEngine's ``Runner.train()`` loads ``load_from`` relative to the
    hooks (mmengine 0.10, ``runner.py``): build the loops, optimizer and
    schedulers -> ``before_run`` hooks -> ``_init_model_weights()`` ->
    ``load_or_resume()`` (``after_load_checkpoint`` hooks, then the weights
    go into the model) -> ``train_loop.run()`` -> ``before_train`` hooks ->
    iterations. A module re-initialised in ``before_run`` would therefore be
    overwritten by the checkpoint: the classic silent bug of cRT, which then
    trains the stage-1 classifier on. This hook re-initialises in
    ``before_train``, after loading and before the first step.

    Resuming: every checkpoint this run saves carries
    ``meta['mmnpe_stage_two']``. A loaded checkpoint with that mark is a
    stage-2 one, so its modules are kept as they are (``--resume`` keeps the
    re-trained classifier; so does ``load_from`` a stage-2 checkpoint). A
    checkpoint without it is a stage-1 one and its ``reinit_modules`` are
    re-initialised. Resuming *from* a stage-1 checkpoint is refused: with
    ``resume=True`` and ``load_from`` set, MMEngine resumes ``load_from``
    itself, i.e. the stage-1 run's epoch, optimizer and schedule.

    Errors (the earliest point the Runner allows): ``load_from`` None
    without ``resume``, or a local ``load_from`` path that does not exist,
    in ``before_run`` (before the checkpoint would be read); nothing loaded
    at all (``resume`` with no checkpoint in the work dir), a resume from a
    stage-1 checkpoint, or an unknown module name, in ``before_train``.

    Under distributed training the re-initialised modules are broadcast
    from rank 0, so every rank starts from the same classifier whatever its
    random state.

    Args:
        reinit_modules (Sequence[str]): Names (dotted paths allowed) of the
            modules to re-initialise after the stage-1 checkpoint is loaded,
            e.g. ``['head']`` for cRT and mmnpe's IWB configs; empty keeps
            the loaded weights (fine-tuning, as the IWB paper's stage 2).
            Defaults to ``('head', )``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, reinit_modules: Sequence[str] = ('head', )) -> None:
        if isinstance(reinit_modules, str):
            reinit_modules = [reinit_modules]
        if (not isinstance(reinit_modules, (list, tuple))
                or not all(isinstance(m, str) and m for m in reinit_modules)):
            raise ValueError('reinit_modules must be a list of module names '
                             f'(possibly empty), got {reinit_modules!r}')
        self.reinit_modules = tuple(reinit_modules)
        self._loaded_meta: Optional[dict] = None
        self._loaded = False

    @staticmethod
    def _load_from(runner) -> Tuple[Optional[str], bool]:
        # mmengine 0.10 keeps both as these attributes (runner.cfg lacks
        # them when the Runner is built from arguments); the config is the
        # fallback for runner-like objects.
        if hasattr(runner, '_load_from'):
            return runner._load_from, bool(runner._resume)
        cfg = getattr(runner, 'cfg', None) or {}
        return cfg.get('load_from'), bool(cfg.get('resume', False))

    def before_run(self, runner) -> None:
        """Refuse to start without a stage-1 checkpoint."""
        load_from, resume = self._load_from(runner)
        if load_from is None and not resume:
            raise ValueError(
                'StageTwoHook: this is a stage-2 config (cRT / IWB train the '
                'classifier of a trained model), but load_from is None. '
                'Train the stage-1 (CE) config first and pass its '
                'checkpoint: tools/train.py CONFIG --cfg-options '
                'load_from=work_dirs/<ce run>/epoch_<last>.pth')
        if load_from is not None and not _is_remote(load_from):
            path = load_from[len('file://'):] if load_from.startswith(
                'file://') else load_from
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'StageTwoHook: load_from={load_from!r} does not exist; '
                    'it must be the checkpoint of the stage-1 (CE) run of '
                    'the same schedule and data set (train it first, or '
                    'pass --cfg-options load_from=PATH)')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember whether the loaded checkpoint is a stage-2 one."""
        self._loaded = True
        meta = checkpoint.get('meta') or {}
        self._loaded_meta = meta.get(META_KEY)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Mark the checkpoint as stage 2 (see the class docstring)."""
        load_from, _ = self._load_from(runner)
        stage_one = (self._loaded_meta or {}).get('stage_one_checkpoint',
                                                  load_from)
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            reinit_modules=list(self.reinit_modules),
            stage_one_checkpoint=stage_one)

    def _resolve(self, model: nn.Module) -> List[Tuple[str, nn.Module]]:
        resolved = []
        for name in self.reinit_modules:
            try:
                resolved.append((name, model.get_submodule(name)))
            except AttributeError:
                children = [n for n, _ in model.named_children()]
                raise ValueError(
                    f'StageTwoHook: reinit_modules names {name!r}, which '
                    f'{type(model).__name__} does not have; its modules are '
                    f'{children}') from None
        return resolved

    def before_train(self, runner) -> None:
        """Re-initialise the modules of a freshly loaded stage-1 model."""
        load_from, resume = self._load_from(runner)
        if not self._loaded:
            raise ValueError(
                'StageTwoHook: no checkpoint was loaded (resume=True found '
                f'none in work_dir {runner.work_dir!r} and load_from is '
                f'{load_from!r}); a stage-2 run needs the stage-1 checkpoint '
                'in load_from')
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        targets = self._resolve(model)
        if self._loaded_meta is not None:
            print_log(
                'StageTwoHook: loaded a stage-2 checkpoint (stage 1: '
                f'{self._loaded_meta.get("stage_one_checkpoint")!r}); its '
                f'{list(self.reinit_modules)} are kept, not re-initialised',
                logger='current')
            return
        if runner.iter > 0 or runner.epoch > 0:
            raise ValueError(
                f'StageTwoHook: resumed from {load_from!r}, a checkpoint '
                'without the stage-2 mark (a stage-1 one, at epoch '
                f'{runner.epoch}, iteration {runner.iter}): with resume=True '
                'MMEngine resumes load_from itself. To resume stage 2 pass '
                '--resume --cfg-options load_from=None (the latest '
                'checkpoint of the work dir) or load_from=<a stage-2 '
                'checkpoint>')
        for name, module in targets:
            reinit_module(module)
            if is_distributed():
                for tensor in list(module.parameters()) + list(
                        module.buffers()):
                    broadcast(tensor.data, src=0)
        if targets:
            print_log(
                f'StageTwoHook: re-initialised {[n for n, _ in targets]} '
                f'after loading the stage-1 checkpoint {load_from!r}',
                logger='current')
        else:
            print_log(
                'StageTwoHook: fine-tuning every module as loaded from the '
                f'stage-1 checkpoint {load_from!r}',
                logger='current')
