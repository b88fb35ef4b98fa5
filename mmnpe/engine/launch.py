"""What ``tools/train.py`` and ``tools/test.py`` do around mmengine's Runner.

Kept here, importable and tested, so that the tools stay thin.
"""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .dist import setup_cpu_distributed
from .resume import check_load_from

# Hooks every run through our tools gets (unless the config lists them
# already, e.g. with other arguments): they only read and check, so they
# change no result.
DEFAULT_HOOKS = (dict(type='InputCheckHook'), dict(type='RandomStateHook'))


def _hook_type(hook) -> str:
    if isinstance(hook, dict):
        kind = hook.get('type')
        return kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return type(hook).__name__


def add_default_hooks(cfg: Config) -> None:
    """Append :data:`DEFAULT_HOOKS` missing from ``cfg.custom_hooks``."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {_hook_type(h).split('.')[-1] for h in hooks}
    hooks += [dict(h) for h in DEFAULT_HOOKS if h['type'] not in present]
    cfg.custom_hooks = hooks


def build_runner(cfg: Config) -> Runner:
    """The Runner for ``cfg`` as our tools build it.

    Before mmengine builds anything: a CPU-only ``launcher='pytorch'`` run
    gets its gloo process group (:func:`setup_cpu_distributed`), a local
    ``load_from`` that does not exist is refused, and the checks of
    :class:`InputCheckHook` and the exact resume of
    :class:`RandomStateHook` are added to ``custom_hooks``. A config with
    ``runner_type`` builds that runner.

    Args:
        cfg (Config): The full config (``work_dir`` and ``launcher`` set),
            modified in place.

    Returns:
        Runner: The runner, not started.
    """
    setup_cpu_distributed(cfg)
    check_load_from(cfg)
    add_default_hooks(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
