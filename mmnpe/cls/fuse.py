"""Fold an NPEClsHead into a plain LinearClsHead for deployment."""
import copy
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS


def _from_mmnpe(type_name) -> bool:
    if not isinstance(type_name, str):
        return False
    cls = MODELS.get(type_name)
    return cls is not None and cls.__module__.startswith('mmnpe')


def fuse_npe_classifier(
    cfg: Config,
    state_dict: Dict[str,
                     torch.Tensor]) -> Tuple[Config, Dict[str, torch.Tensor]]:
    """Config and weights of the same classifier with the PEMs folded in.

    The ``NPEClsHead`` becomes a stock ``LinearClsHead`` whose ``fc`` is
    :meth:`NPEClsHead.fuse` of the trained head: same predictions, one
    matmul, no mmnpe needed to load it. ``custom_imports`` of mmnpe is
    dropped unless another part of the model (e.g. ``CifarResNet``) still
    comes from mmnpe.

    Args:
        cfg (Config): Training config whose ``model.head`` is an NPEClsHead.
        state_dict (dict): Its trained weights (``head.fc.*``,
            ``head.pems.*`` ...).

    Returns:
        tuple[Config, dict]: The fused config and state dict.
    """
    head_cfg = cfg.model.get('head', {})
    if head_cfg.get('type') != 'NPEClsHead':
        raise ValueError('fuse_npe_classifier needs model.head.type == '
                         f"'NPEClsHead', got {head_cfg.get('type')!r}")
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
        if k not in ('type', 'num_pems', 'sign', 'scale_factor',
                     'pem_loss_weight', 'pem_init_std')
    }
    new_head['type'] = 'LinearClsHead'
    fused_dict['model']['head'] = new_head
    needs_mmnpe = any(
        _from_mmnpe(part.get('type'))
        for part in (cfg.model, cfg.model.get('backbone', {}),
                     cfg.model.get('neck') or {}))
    if not needs_mmnpe and 'custom_imports' in fused_dict:
        imports = [
            m for m in fused_dict['custom_imports'].get('imports', [])
            if m != 'mmnpe' and not m.startswith('mmnpe.')
        ]
        if imports:
            fused_dict['custom_imports']['imports'] = imports
        else:
            del fused_dict['custom_imports']
    fused_cfg = Config(fused_dict)

    fused = {
        k: v
        for k, v in state_dict.items() if not k.startswith('head.pems.')
    }
    fused['head.fc.weight'] = fc.weight.detach().clone()
    fused['head.fc.bias'] = fc.bias.detach().clone()
    return fused_cfg, fused
