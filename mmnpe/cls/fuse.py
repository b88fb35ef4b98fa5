"""Fold the PEMs of an NPE classification head into its stock head for
deployment."""
import copy
from typing import Any, Dict, Iterator, Set, Tuple

import mmengine.registry
import torch
from mmengine.config import Config
from mmengine.registry import Registry
from mmpretrain.registry import MODELS

from mmnpe.cls.heads import NPE_HEAD_KEYS, NPEHeadMixin


def _registries(registry: Registry) -> Iterator[Registry]:
    yield registry
    for child in registry.children.values():
        yield from _registries(child)


def mmnpe_type_names() -> Set[str]:
    """Every name that mmnpe registered, in any registry of any scope
    (mmengine's root registries and their mmseg / mmpretrain children)."""
    names = set()
    for root in vars(mmengine.registry).values():
        if not isinstance(root, Registry):
            continue
        for registry in _registries(root):
            for name, obj in registry.module_dict.items():
                if getattr(obj, '__module__', '').startswith('mmnpe'):
                    names.add(name)
    return names


def _types(node: Any) -> Iterator[Any]:
    """Every ``type`` value anywhere in a config (nested dicts / lists)."""
    if isinstance(node, dict):
        if 'type' in node:
            yield node['type']
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _types(value)


def config_needs_mmnpe(cfg: Config) -> bool:
    """Whether building anything in ``cfg`` needs mmnpe imported.

    True as soon as one ``type`` anywhere (model, backbone, neck, head, data
    preprocessor, data sets and their transforms, evaluators, hooks,
    visualizer ...) is a name mmnpe registered, or a class or function
    defined in mmnpe; a scope prefix (``'mmpretrain.CIFAR10LT'``) is looked
    through.

    Args:
        cfg (Config | dict): Any config.

    Returns:
        bool: Whether ``custom_imports`` must keep mmnpe.
    """
    names = mmnpe_type_names()
    for value in _types(cfg.to_dict() if isinstance(cfg, Config) else cfg):
        if isinstance(value, str):
            if value.rsplit('.', 1)[-1] in names:
                return True
        elif getattr(value, '__module__', '').startswith('mmnpe'):
            return True
    return False


def _drop_mmnpe_import(cfg_dict: dict) -> None:
    imports = cfg_dict.get('custom_imports')
    if not imports:
        return
    kept = [
        m for m in imports.get('imports', [])
        if m != 'mmnpe' and not m.startswith('mmnpe.')
    ]
    if kept:
        imports['imports'] = kept
    else:
        del cfg_dict['custom_imports']


def fuse_npe_classifier(
    cfg: Config,
    state_dict: Dict[str,
                     torch.Tensor]) -> Tuple[Config, Dict[str, torch.Tensor]]:
    """Config and weights of the same classifier with the PEMs folded in.

    The NPE head (``NPEClsHead``, ``NPEVisionTransformerClsHead``,
    ``NPEStackedLinearClsHead``) becomes its stock head (``LinearClsHead``
    ...) whose output linear layer is :meth:`NPEHeadMixin.fuse` of the
    trained head: same predictions, one matmul. ``custom_imports`` keeps
    mmnpe whenever anything else in the config is mmnpe's
    (:func:`config_needs_mmnpe`: a data set, metric, hook, backbone ...), so
    the fused config runs ``tools/test.py`` in a fresh interpreter; it drops
    mmnpe only when nothing needs it, and then mmpretrain loads the model
    without mmnpe.

    Args:
        cfg (Config): Training config whose ``model.head`` is an NPE head.
        state_dict (dict): Its trained weights (``head.fc.*``,
            ``head.pems.*`` ...).

    Returns:
        tuple[Config, dict]: The fused config and state dict.
    """
    head_cfg = cfg.model.get('head') or {}
    head_type = head_cfg.get('type')
    head_cls = MODELS.get(head_type) if isinstance(head_type,
                                                   str) else head_type
    if not (isinstance(head_cls, type) and issubclass(head_cls, NPEHeadMixin)):
        npe = ', '.join(
            sorted(c.__name__ for c in NPEHeadMixin.npe_heads.values()))
        raise ValueError(f'fuse_npe_classifier needs model.head.type to be '
                         f'an NPE head ({npe}), got {head_type!r}')
    head = MODELS.build(copy.deepcopy(head_cfg))
    head.load_state_dict({
        k[len('head.'):]: v
        for k, v in state_dict.items() if k.startswith('head.')
    })
    fc = head.fuse()

    fused_dict = copy.deepcopy(cfg.to_dict())
    new_head = {
        k: v
        for k, v in fused_dict['model']['head'].items()
        if k != 'type' and k not in NPE_HEAD_KEYS
    }
    new_head['type'] = head_cls.stock_head.__name__
    fused_dict['model']['head'] = new_head
    if not config_needs_mmnpe(fused_dict):
        _drop_mmnpe_import(fused_dict)
    fused_cfg = Config(fused_dict)

    fused = {
        k: v
        for k, v in state_dict.items() if not k.startswith('head.pems.')
    }
    prefix = f'head.{head.final_linear_name}.'
    fused[prefix + 'weight'] = fc.weight.detach().clone()
    fused[prefix + 'bias'] = fc.bias.detach().clone()
    return fused_cfg, fused
