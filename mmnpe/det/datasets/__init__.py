from .lvis_category_counts import lvis_category_counts
from .synthetic_lvis import (frequency_tag, generate_synthetic_lvis,
                             synthetic_lvis_classes)

__all__ = [
    'frequency_tag', 'generate_synthetic_lvis', 'lvis_category_counts',
    'synthetic_lvis_classes'
]
