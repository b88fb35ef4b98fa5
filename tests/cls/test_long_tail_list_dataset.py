"""LongTailListDataset on tiny copies of ImageNet-LT, iNaturalist 2018 and
Places-LT in their real layout (real JPEG files, the real list format),
built from the data sets of the benchmarks' own configs: counts, labels,
which list each split reads, the training counts that Many / Medium / Few
use, and every malformed list refused with its file and line."""
import copy
import functools
import os
import os.path as osp

import pytest
from lt_trees import BENCHMARKS, write_lt_tree
from mmengine.config import Config
from mmengine.registry import DATASETS

from mmnpe.cls import LongTailAccuracy, LongTailListDataset
from mmnpe.engine import count_dataset_classes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CE_CONFIGS = dict(
    imagenet_lt='configs/imagenet_lt/ce_resnet50_180e_imagenet-lt.py',
    inat2018='configs/inat2018/ce_resnet50_200e_inat2018.py',
    places_lt='configs/places_lt/ce_resnet152_90e_places-lt.py')
TRAIN_COUNTS = [5, 3, 2, 1, 0, 1]


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp('lt_lists')
    return {
        name:
        write_lt_tree(
            str(root),
            name,
            TRAIN_COUNTS,
            val_per_class=2,
            test_per_class=3,
            eval_classes=[0, 2, 3])
        for name in BENCHMARKS
    }


@functools.lru_cache()
def _config(name):
    return Config.fromfile(osp.join(REPO, CE_CONFIGS[name]))


def build_split(name, tree, split, **overrides):
    """The ``split`` data set of the benchmark's CE config, at ``tree``."""
    ds_cfg = copy.deepcopy(_config(name)[f'{split}_dataloader'].dataset)
    ds_cfg.data_root = tree.root
    # mmengine's serialisation runs a full gc.collect() per build (seconds
    # in a large test process); the list is read and checked either way.
    ds_cfg.serialize_data = False
    ds_cfg.update(overrides)
    return DATASETS.build(ds_cfg)


@pytest.mark.parametrize('name', list(BENCHMARKS))
def test_each_split_reads_its_list(name, trees):
    tree = trees[name]
    spec = BENCHMARKS[name]
    for split in ('train', 'val', 'test'):
        ds = build_split(name, tree, split)
        assert isinstance(ds, LongTailListDataset)
        # iNaturalist 2018 has no labelled test split: val is the test set.
        listed = 'val' if split == 'test' and name == 'inat2018' else split
        assert ds.ann_file == tree.list_file(listed)
        assert ds.get_gt_labels().tolist() == tree.labels[listed]
        assert len(ds.metainfo['classes']) == spec['num_classes']
        # The evaluation splits carry no training metadata: the training
        # counts come from the training set (ClassCountsHook).
        assert 'train_class_counts' not in ds.metainfo
        with open(tree.list_file(listed)) as f:
            paths = [line.split()[0] for line in f]
        assert [ds.get_data_info(i)['img_path'] for i in range(len(ds))
                ] == [osp.join(tree.root, p) for p in paths]
    # Images go through the stock pipelines: 224 x 224 crops.
    assert build_split(name, tree, 'train')[0]['inputs'].shape == (3, 224, 224)
    assert build_split(name, tree, 'test')[0]['inputs'].shape == (3, 224, 224)


@pytest.mark.parametrize('name', list(BENCHMARKS))
def test_counts_come_from_the_training_list(name, trees):
    tree = trees[name]
    train = build_split(name, tree, 'train')
    assert len(train) == sum(TRAIN_COUNTS)
    counted = count_dataset_classes(train)
    assert counted['kind'] == 'images'
    assert counted['counts'] == tree.counts('train')
    assert counted['counts'][:len(TRAIN_COUNTS)] == TRAIN_COUNTS
    # The evaluation lists are balanced over the classes they hold.
    for split in ('val', 'test'):
        counts = count_dataset_classes(build_split(name, tree,
                                                   split))['counts']
        held = [c for c in counts if c]
        assert len(set(held)) == 1 and len(held) == 3


def test_val_and_test_read_the_images_their_lists_name(trees):
    """ImageNet-LT / Places-LT: the test split reads the validation folders
    its list names, val and train the training folders theirs, no image
    twice."""
    for name, test_folder in (('imagenet_lt', 'val/'), ('places_lt',
                                                        'val_256/')):
        tree = trees[name]
        paths = {}
        for split in ('train', 'val', 'test'):
            ds = build_split(name, tree, split)
            paths[split] = {
                osp.relpath(ds.get_data_info(i)['img_path'], tree.root)
                for i in range(len(ds))
            }
        assert all(p.startswith(test_folder) for p in paths['test'])
        assert not any(p.startswith(test_folder) for p in paths['val'])
        assert not paths['val'] & paths['train']
        assert not paths['test'] & (paths['train'] | paths['val'])


def test_many_medium_few_use_the_training_lists_counts(tmp_path):
    """Bands from the training list (> 100, 20-100, < 20): class 0 with 101
    images is Many, 100 and 20 are Medium, 19 is Few, whatever the balanced
    evaluation list holds."""
    tree = write_lt_tree(
        str(tmp_path),
        'places_lt', [101, 100, 20, 19],
        val_per_class=1,
        eval_classes=[0, 1, 2, 3])
    train = build_split('places_lt', tree, 'train')
    counts = count_dataset_classes(train)['counts']
    val = build_split('places_lt', tree, 'val')
    target = val.get_gt_labels()
    pred = [{0: 0, 1: 1, 2: 0, 3: 3}[int(t)] for t in target]
    result = LongTailAccuracy.calculate(pred, target, counts)
    assert (result['many'], result['medium'], result['few']) == (100., 50.,
                                                                 100.)
    # The val list's own counts would put every class in Few.
    assert set(LongTailAccuracy.calculate(
        pred, target, [1] * 365)) == {'top1', 'balanced', 'few', 'per_class'}


def _write_list(tree, lines, name='bad.txt'):
    path = osp.join(tree.root, name)
    with open(path, 'w') as f:
        f.writelines(line + '\n' for line in lines)
    return name


def _good_lines(tree, split='train'):
    with open(tree.list_file(split)) as f:
        return [line.rstrip('\n') for line in f]


@pytest.mark.parametrize(
    'edit, error, message',
    [
        # (line 3 becomes ..., the error, what it says after "line 3: ")
        (lambda p, y: f'{p}', ValueError,
         r'expected "relative/path label" \(two fields separated by white '
         r"space\), got 'PATH'"),
        (lambda p, y: f'{p} {y} 7', ValueError,
         r'expected "relative/path label"'),
        (lambda p, y: '', ValueError, r"expected .*got ''"),
        (lambda p, y: f'{p} 2.5', ValueError,
         r"the label must be an integer, got '2.5'"),
        (lambda p, y: f'{p} one', ValueError,
         r"the label must be an integer, got 'one'"),
        (lambda p, y: f'{p} 365', ValueError,
         r'label 365 is outside \[0, 364\] \(365 classes\)'),
        (lambda p, y: f'{p} -1', ValueError,
         r'label -1 is outside \[0, 364\]'),
        (lambda p, y: f'data_256/m/missing/00000001.jpg {y}',
         FileNotFoundError,
         r'image data_256/m/missing/00000001.jpg does not exist'),
    ])
def test_bad_lines_are_refused_with_file_and_line(trees, edit, error, message):
    tree = trees['places_lt']
    lines = _good_lines(tree)
    path, label = lines[2].split()
    lines[2] = edit(path, label)
    bad = _write_list(tree, lines)
    message = message.replace('PATH', path)
    with pytest.raises(
            error, match=f'{osp.join(tree.root, bad)}, line 3: {message}'):
        build_split('places_lt', tree, 'train', ann_file=bad)


def test_a_deleted_image_is_named_with_its_line(tmp_path):
    tree = write_lt_tree(str(tmp_path), 'imagenet_lt', [2, 2])
    lines = _good_lines(tree)
    os.remove(osp.join(tree.root, lines[1].split()[0]))
    with pytest.raises(
            FileNotFoundError,
            match=f'ImageNet_LT_train.txt, line 2: image '
            f'{lines[1].split()[0]} does not exist'):
        build_split('imagenet_lt', tree, 'train')
    # check_files=False trusts the list (a slow network file system).
    ds = build_split('imagenet_lt', tree, 'train', check_files=False)
    assert len(ds) == 4


def test_missing_or_empty_list(trees):
    tree = trees['inat2018']
    with pytest.raises(
            FileNotFoundError,
            match='no split list at .*iNaturalist2018/nowhere.txt'):
        build_split('inat2018', tree, 'train', ann_file='nowhere.txt')
    empty = _write_list(tree, [], 'empty.txt')
    with pytest.raises(ValueError, match='empty.txt lists no image'):
        build_split('inat2018', tree, 'train', ann_file=empty)


def test_classes_from_a_names_file_and_bad_arguments(trees):
    tree = trees['imagenet_lt']
    names = osp.join(tree.root, 'classnames.txt')
    with open(names, 'w') as f:
        f.writelines(f'class {i}\n' for i in range(1000))
    ds = build_split(
        'imagenet_lt', tree, 'train', metainfo=dict(classes=names))
    assert ds.metainfo['classes'][3] == 'class 3'

    kwargs = dict(
        ann_file='ImageNet_LT_train.txt', data_root=tree.root, lazy_init=True)
    with pytest.raises(
            ValueError,
            match='needs num_classes .* or '
            r'metainfo=dict\(classes=...\), got neither'):
        LongTailListDataset(**kwargs)
    for bad in (1, True, '1000', 2.0):
        with pytest.raises(ValueError, match='num_classes must be an int > 1'):
            LongTailListDataset(num_classes=bad, **kwargs)
    with pytest.raises(
            ValueError,
            match='num_classes=999 but metainfo names 1000 classes'):
        LongTailListDataset(
            num_classes=999, metainfo=dict(classes=names),
            **kwargs).full_init()
    with pytest.raises(ValueError, match='ann_file must be the path'):
        LongTailListDataset(ann_file='', num_classes=5)
