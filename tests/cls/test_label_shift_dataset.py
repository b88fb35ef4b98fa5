"""LabelShiftDataset: a balanced test set subsampled to a forward / backward
shifted prior, seeded, from a config, with its counts in metainfo."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mmnpe.cls import LabelShiftDataset
from mmnpe.cls.datasets import label_shift_indices
from mmnpe.functional import label_shift_profile

DIGITS = dict(
    type='DigitsLT',
    split='test',
    imbalance_ratio=50,
    pipeline=[dict(type='PackInputs')])


def build(**kwargs):
    init_default_scope('mmpretrain')
    return DATASETS.build(
        dict(type='LabelShiftDataset', dataset=DIGITS, **kwargs))


@pytest.mark.parametrize('rho', [2, 5, 10, 25, 50])
@pytest.mark.parametrize('direction', ['forward', 'backward'])
def test_counts_follow_the_shifted_profile(rho, direction):
    ds = build(rho=rho, direction=direction, seed=0)
    counts = np.array(ds.metainfo['target_class_counts'])
    want = np.maximum(
        1, (50 * label_shift_profile(10, rho, direction).numpy()).astype(int))
    assert counts.tolist() == want.tolist()
    assert np.bincount(ds.get_gt_labels(), minlength=10).tolist() == \
        counts.tolist()
    assert len(ds) == counts.sum()
    head, tail = (0, 9) if direction == 'forward' else (9, 0)
    assert counts[head] == 50 and counts[tail] == max(1, int(50 / rho))
    np.testing.assert_allclose(ds.metainfo['target_prior'],
                               counts / counts.sum())
    assert ds.metainfo['label_shift'] == dict(
        rho=float(rho), direction=direction, seed=0)
    # The training counts pass through for LongTailAccuracy's groups.
    assert ds.metainfo['train_class_counts'][0] > \
        ds.metainfo['train_class_counts'][-1]


def test_samples_are_the_wrapped_ones_and_seeded():
    base = DATASETS.build(DIGITS)
    ds = build(rho=10, seed=3)
    assert ds.indices == sorted(ds.indices)
    for i in (0, len(ds) // 2, len(ds) - 1):
        item, orig = ds[i], base[ds.indices[i]]
        assert (item['inputs'] == orig['inputs']).all()
        assert int(item['data_samples'].gt_label) == ds.get_cat_ids(i)[0]
        assert ds.get_data_info(i)['gt_label'] == ds.get_cat_ids(i)[0]
    assert build(rho=10, seed=3).indices == ds.indices
    assert build(rho=10, seed=4).indices != ds.indices
    # The same samples from the labels alone (what the study applies to
    # cached logits).
    keep, counts = label_shift_indices(base.get_gt_labels(), 10, 10, 'forward',
                                       3)
    assert keep.tolist() == ds.indices
    assert counts.tolist() == ds.metainfo['target_class_counts']


def test_wraps_a_built_dataset_and_a_subset_with_indices():
    base = DATASETS.build(dict(DIGITS, indices=list(range(1, 500, 2))))
    ds = LabelShiftDataset(base, rho=50, direction='backward')
    assert ds.metainfo['target_class_counts'] == [
        1, 1, 1, 1, 2, 4, 6, 10, 16, 25
    ]


def test_usable_from_a_config_through_the_runner(tmp_path):
    from mmengine.config import Config

    from mmnpe.analysis import build_model, load_config
    from mmnpe.analysis.builder import build_dataloader
    cfg = load_config('configs/demo/ce_resnet32_digits-lt.py')
    cfg.test_dataloader.dataset = dict(
        type='LabelShiftDataset',
        dataset=cfg.test_dataloader.dataset,
        rho=10,
        direction='forward',
        seed=0)
    loader = build_dataloader(Config(cfg.test_dataloader.to_dict()))
    assert len(loader.dataset) == sum(
        loader.dataset.metainfo['target_class_counts'])
    model = build_model(cfg)
    batch = next(iter(loader))
    out = model.test_step(batch)
    assert len(out) == len(batch['data_samples'])


@pytest.mark.parametrize('kwargs, match', [
    (dict(rho=0.5), 'rho must be a finite number >= 1, got 0.5'),
    (dict(rho=float('inf')), 'rho must be a finite number >= 1'),
    (dict(direction='up'), "direction must be one of .*got 'up'"),
    (dict(seed='0'), "seed must be an int, got '0'"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
    with pytest.raises(TypeError, match='dataset must be a dataset config'):
        LabelShiftDataset([1, 2, 3])


def test_a_class_without_samples_is_refused():
    with pytest.raises(ValueError, match=r'none of class\(es\) \[2\]'):
        label_shift_indices(np.array([0, 1, 3, 0, 1, 3]), 4, 10)
