import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.fileio import get_file_backend, list_from_file
from mmengine.fileio.backends import LocalBackend
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS


def _check_num_classes(num_classes) -> Optional[int]:
    if num_classes is None:
        return None
    if (isinstance(num_classes, bool) or not isinstance(num_classes, int)
            or num_classes < 2):
        raise ValueError('num_classes must be an int > 1 (or None to take '
                         f"the classes from metainfo), got {num_classes!r}")
    return num_classes


@DATASETS.register_module()
class LongTailListDataset(CustomDataset):
    """A long-tailed benchmark read from its split list, every line checked.

    ImageNet-LT and Places-LT (Liu et al., "Large-Scale Long-Tailed
    Recognition in an Open World", CVPR 2019) and iNaturalist 2018 (Van Horn
    et al., CVPR 2018) ship the same format: one ``relative/path label`` a
    line (``ImageNet_LT_train.txt``, ``iNaturalist18_val.txt``,
    ``Places_LT_test.txt`` ...), the paths relative to the folder that holds
    the list and the images. What differs between them is only data: the
    list files, the number of classes and the class names, which are config
    values. One class therefore serves all three (a subclass per benchmark
    would only repeat them as defaults), and ``configs/imagenet_lt``,
    ``configs/inat2018`` and ``configs/places_lt`` set them.

    It is mmpretrain's :class:`CustomDataset` in its annotation-file mode
    with a stricter reader: when the data set is built (``full_init``),
    every line must be exactly two fields, a path naming an existing file
    and an integer label in ``[0, num_classes)``. A list that does not match
    its images (a truncated download, lists and images of different
    releases, a wrong ``data_root``) fails at once with the list file and
    line number, instead of as a missing-file error hours into an epoch or,
    for a label out of range, as a silently wrong class.

    Labels and counts come from the list only: ``get_gt_labels()`` of the
    training split gives the images per class that the count-based methods
    and Many / Medium / Few use (``ClassCountsHook`` counts them once); the
    val / test splits carry no training metadata.

    Args:
        ann_file (str): The split list, relative to ``data_root``.
        num_classes (int, optional): Number of classes, > 1; class names
            are then ``'0'`` ... ``str(num_classes - 1)`` unless ``metainfo``
            names them. Defaults to None: the number of
            ``metainfo['classes']``.
        data_root (str): The folder holding the lists and the images.
            Defaults to ''.
        data_prefix (str | dict): Prefix of the image paths, relative to
            ``data_root``. Defaults to '' (the lists' paths start at
            ``data_root``).
        check_files (bool): Check that every listed image exists. Defaults
            to True; ``False`` skips the check (one ``stat`` per image,
            e.g. on a slow network file system).
        metainfo (dict, optional): ``classes``: the class names (a sequence
            or the path of a file with one name a line), one per label.
        **kwargs: Arguments of :class:`CustomDataset` (``pipeline``,
            ``test_mode``, ``indices`` ...).
    """

    def __init__(self,
                 ann_file: str,
                 num_classes: Optional[int] = None,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 check_files: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if not isinstance(ann_file, str) or not ann_file:
            raise ValueError('ann_file must be the path of the split list '
                             f'(one "relative/path label" a line), got '
                             f'{ann_file!r}')
        num_classes = _check_num_classes(num_classes)
        metainfo = dict(metainfo or {})
        if metainfo.get('classes') is None:
            if num_classes is None:
                raise ValueError(
                    'LongTailListDataset needs num_classes (e.g. 1000 for '
                    'ImageNet-LT, 8142 for iNaturalist 2018, 365 for '
                    "Places-LT) or metainfo=dict(classes=...), got neither")
            metainfo['classes'] = tuple(str(i) for i in range(num_classes))
        self.num_classes = num_classes
        self.check_files = bool(check_files)
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            metainfo=metainfo,
            with_label=True,
            **kwargs)

    def _classes(self) -> Sequence[str]:
        classes = self.CLASSES
        if self.num_classes is not None and len(classes) != self.num_classes:
            raise ValueError(
                f'num_classes={self.num_classes} but metainfo names '
                f'{len(classes)} classes; give one name per label')
        return classes

    def load_data_list(self) -> List[dict]:
        """Read and check the split list (called by ``full_init``).

        Returns:
            list[dict]: ``img_path`` and ``gt_label`` per listed image.

        Raises:
            ValueError: A line that is not ``path label``, or a label that
                is not an integer in ``[0, num_classes)``; the message names
                the list and the line.
            FileNotFoundError: The list, or (``check_files``) a listed
                image, does not exist.
        """
        num_classes = len(self._classes())
        backend = get_file_backend(self.img_prefix, enable_singleton=True)
        if isinstance(backend, LocalBackend) and not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: no split list at {self.ann_file} '
                f'(data_root={self.data_root!r}, ann_file relative to it)')
        lines = list_from_file(self.ann_file)
        if not lines:
            raise ValueError(f'{self.ann_file} lists no image')
        local = isinstance(backend, LocalBackend)
        data_list = []
        for lineno, line in enumerate(lines, start=1):
            where = f'{self.ann_file}, line {lineno}'
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(
                    f'{where}: expected "relative/path label" (two fields '
                    f'separated by white space), got {line!r}')
            filename, label = fields
            try:
                gt_label = int(label)
            except ValueError:
                raise ValueError(f'{where}: the label must be an integer, '
                                 f'got {label!r}') from None
            if not 0 <= gt_label < num_classes:
                raise ValueError(f'{where}: label {gt_label} is outside [0, '
                                 f'{num_classes - 1}] ({num_classes} classes)')
            img_path = backend.join_path(self.img_prefix, filename)
            if self.check_files and not (osp.isfile(img_path) if local else
                                         backend.exists(img_path)):
                raise FileNotFoundError(
                    f'{where}: image {filename} does not exist (looked for '
                    f'{img_path}); the list and the images must be of the '
                    'same release, under data_root')
            data_list.append(dict(img_path=img_path, gt_label=gt_label))
        return data_list
