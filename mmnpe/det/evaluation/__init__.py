from .lvis_numpy_compat import patch_lvis_numpy

__all__ = ['patch_lvis_numpy']
