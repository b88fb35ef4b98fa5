from .frozen_backbone_hook import FrozenBackboneHook

__all__ = ['FrozenBackboneHook']
