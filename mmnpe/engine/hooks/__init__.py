from .frozen_backbone_hook import FrozenBackboneHook
from .stage_two_hook import StageTwoHook, reinit_module

__all__ = ['FrozenBackboneHook', 'StageTwoHook', 'reinit_module']
