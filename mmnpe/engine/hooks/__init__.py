from .frozen_backbone_hook import FrozenBackboneHook
from .input_check_hook import InputCheckHook
from .random_state_hook import RandomStateHook

__all__ = ['FrozenBackboneHook', 'InputCheckHook', 'RandomStateHook']
