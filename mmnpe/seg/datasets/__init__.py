from .synthetic_lt_dataset import SyntheticLTDataset
from .synthetic_lt_generator import generate_synthetic_lt

__all__ = ['SyntheticLTDataset', 'generate_synthetic_lt']
