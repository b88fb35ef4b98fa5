from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class SyntheticLTDataset(BaseSegDataset):
    """Synthetic long-tailed segmentation data set (the demo's default).

    Written by :func:`mmnpe.seg.datasets.generate_synthetic_lt` in mmseg's
    standard layout::

        data_root/img_dir/{train,val}/xxx.png   (3-channel images)
        data_root/ann_dir/{train,val}/xxx.png   (uint8 labels, 0..5)

    Six classes whose pixel frequencies span more than 50x, with
    appearances that overlap so that the class prior decides the ambiguous
    pixels. ``reduce_zero_label=False``: 0 is the frequent background.
    """
    METAINFO = dict(
        classes=('background', 'meadow', 'field', 'forest', 'lake', 'glacier'),
        palette=[[40, 40, 40], [120, 200, 80], [230, 200, 70], [20, 110, 40],
                 [60, 110, 230], [240, 240, 255]])

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
