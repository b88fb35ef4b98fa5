"""ClassBalancedSampler: uniform classes, seeded, disjoint DDP shares."""
import os

import numpy as np
import pytest
import torch
from mmengine.registry import DATA_SAMPLERS
from mmpretrain.registry import DATA_SAMPLERS as CLS_SAMPLERS
from mmseg.registry import DATA_SAMPLERS as SEG_SAMPLERS

import mmnpe.engine.samplers.class_balanced_sampler as cbs_module
from mmnpe.engine import ClassBalancedSampler

COUNTS = (500, 50, 5)


class LabelledSet:
    """Single-label data set with MMPretrain's public label API."""

    def __init__(self, counts=COUNTS, seed=0):
        labels = np.repeat(np.arange(len(counts)), counts)
        if seed is not None:
            np.random.RandomState(seed).shuffle(labels)
        self.labels = labels
        self.metainfo = dict(
            classes=tuple(f'c{i}' for i in range(len(counts))))

    def __len__(self):
        return len(self.labels)

    def get_gt_labels(self):
        return self.labels.copy()

    def get_cat_ids(self, idx):
        return [int(self.labels[idx])]


class MultiLabelSet:
    """Only ``get_cat_ids``: image 0 carries classes 0 and 1."""
    metainfo = dict(classes=('a', 'b', 'c'))
    cat_ids = [[0, 1], [0], [0], [0], [2], [2]]

    def __len__(self):
        return len(self.cat_ids)

    def get_cat_ids(self, idx):
        return self.cat_ids[idx]


def _draw(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(iter(sampler))


def _with_dist(monkeypatch, rank, world_size):
    monkeypatch.setattr(cbs_module, 'get_dist_info', lambda:
                        (rank, world_size))


def test_class_frequencies_are_uniform_and_images_uniform_within_class():
    dataset = LabelledSet()
    sampler = ClassBalancedSampler(dataset, num_samples=30000, seed=0)
    indices = np.asarray(_draw(sampler))
    assert len(sampler) == len(indices) == 30000
    freq = np.bincount(dataset.labels[indices], minlength=3) / len(indices)
    # Binomial std of a frequency is 0.0027 here; natural sampling would
    # give 0.899 / 0.090 / 0.009.
    np.testing.assert_allclose(freq, 1 / 3, atol=0.012)
    # Within the tail class every one of its 5 images is equally likely.
    tail = np.flatnonzero(dataset.labels == 2)
    hits = np.array([(indices == i).sum() for i in tail])
    np.testing.assert_allclose(hits / hits.sum(), 0.2, atol=0.03)
    # Only images of the data set are drawn.
    assert indices.min() >= 0 and indices.max() < len(dataset)


def test_default_epoch_length_is_the_dataset_length():
    dataset = LabelledSet()
    sampler = ClassBalancedSampler(dataset, seed=0)
    assert len(sampler) == len(dataset) == len(_draw(sampler))


def test_identical_across_two_seeded_runs_and_epochs_differ():
    dataset = LabelledSet()
    a = ClassBalancedSampler(dataset, num_samples=200, seed=3)
    b = ClassBalancedSampler(LabelledSet(), num_samples=200, seed=3)
    assert _draw(a, 0) == _draw(b, 0)
    assert _draw(a, 5) == _draw(b, 5)
    # set_epoch changes the draw, and going back reproduces it (resume).
    assert _draw(a, 0) != _draw(a, 1)
    assert _draw(a, 1) == _draw(b, 1)
    c = ClassBalancedSampler(dataset, num_samples=200, seed=4)
    assert _draw(a, 0) != _draw(c, 0)


@pytest.mark.parametrize('num_samples', [200, 201])
def test_two_ranks_draw_disjoint_shares_of_one_global_draw(
        monkeypatch, num_samples):
    dataset = LabelledSet()
    shares = []
    for rank in (0, 1):
        _with_dist(monkeypatch, rank, 2)
        sampler = ClassBalancedSampler(
            dataset, num_samples=num_samples, seed=7)
        shares.append(_draw(sampler, epoch=2))
    _with_dist(monkeypatch, 0, 1)
    single = ClassBalancedSampler(dataset, num_samples=num_samples, seed=7)
    total = sampler.total_size
    assert total == 2 * ((num_samples + 1) // 2)
    single.num_samples = single.total_size = total
    whole = _draw(single, epoch=2)
    # Equal lengths (every rank runs the same iterations) ...
    assert len(shares[0]) == len(shares[1]) == total // 2
    # ... at disjoint positions of one draw, whose union is that draw.
    interleaved = [None] * total
    interleaved[0::2], interleaved[1::2] = shares
    assert interleaved == whole
    # The shares differ (they are not the same draw on both ranks).
    assert shares[0] != shares[1]


def test_multi_label_images_join_every_class_pool():
    sampler = ClassBalancedSampler(MultiLabelSet(), num_samples=6000, seed=0)
    indices = np.asarray(_draw(sampler))
    # Class 1 has only image 0; classes 0 and 2 have 4 and 2 images.
    # P(image 0) = 1/3 (class 1) + 1/3 * 1/4 (class 0) = 5/12.
    np.testing.assert_allclose((indices == 0).mean(), 5 / 12, atol=0.02)
    np.testing.assert_allclose(
        np.isin(indices, [4, 5]).mean(), 1 / 3, atol=0.02)


def test_class_without_images_is_left_out_with_a_warning():
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        dataset = LabelledSet(counts=(3, 0, 2))
        sampler = ClassBalancedSampler(dataset, num_samples=1000, seed=0)
    finally:
        logger.removeHandler(handler)
    assert any('classes [1] have no image' in r.getMessage() for r in records)
    assert sampler.classes.tolist() == [0, 2]
    freq = np.bincount(dataset.labels[_draw(sampler)], minlength=3) / 1000
    assert freq[1] == 0
    np.testing.assert_allclose(freq[[0, 2]], 0.5, atol=0.05)


@pytest.mark.parametrize('registry',
                         [DATA_SAMPLERS, CLS_SAMPLERS, SEG_SAMPLERS])
def test_found_from_both_scopes(registry):
    sampler = registry.build(
        dict(type='ClassBalancedSampler', num_samples=10),
        default_args=dict(dataset=LabelledSet(), seed=0))
    assert isinstance(sampler, ClassBalancedSampler)


def test_reads_a_real_mmpretrain_dataset():
    from mmnpe.cls import DigitsLT
    dataset = DigitsLT(split='train', imbalance_ratio=50)
    counts = np.asarray(dataset.metainfo['train_class_counts'])
    sampler = ClassBalancedSampler(dataset, num_samples=5000, seed=0)
    labels = dataset.get_gt_labels()[_draw(sampler)]
    freq = np.bincount(labels, minlength=10) / 5000
    assert counts.max() / counts.min() >= 40
    np.testing.assert_allclose(freq, 0.1, atol=0.02)


@pytest.mark.parametrize('num_samples', [0, -3, 2.5, True])
def test_bad_num_samples_refused(num_samples):
    with pytest.raises(ValueError, match='num_samples must be None'):
        ClassBalancedSampler(LabelledSet(), num_samples=num_samples, seed=0)


def test_dataset_without_label_api_refused():

    class Plain:

        def __len__(self):
            return 3

    with pytest.raises(TypeError, match='get_gt_labels.. or get_cat_ids'):
        ClassBalancedSampler(Plain(), seed=0)


# Run by each of 2 processes: loads only the sampler's file (not the mmnpe
# package, whose import pulls in mmseg and mmpretrain), joins a gloo group
# and saves its share.
_GLOO_WORKER = """
import importlib.util, sys
import numpy as np, torch, torch.distributed as dist
path, init_file, out, rank = sys.argv[1:5]
spec = importlib.util.spec_from_file_location('cbs', path)
cbs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cbs)

class LabelledSet:
    labels = np.repeat(np.arange(3), (500, 50, 5))
    metainfo = dict(classes=('c0', 'c1', 'c2'))
    def __len__(self):
        return len(self.labels)
    def get_gt_labels(self):
        return self.labels.copy()

dist.init_process_group('gloo', init_method='file://' + init_file,
                        rank=int(rank), world_size=2)
try:
    # seed=None: drawn on rank 0 and broadcast (sync_random_seed).
    sampler = cbs.ClassBalancedSampler(LabelledSet(), num_samples=101)
    sampler.set_epoch(3)
    torch.save(dict(seed=sampler.seed, world_size=sampler.world_size,
                    indices=list(iter(sampler))), out)
finally:
    dist.destroy_process_group()
"""


def test_real_gloo_group_shares_the_seed_and_splits_the_draw(
        monkeypatch, tmp_path):
    import subprocess
    import sys
    env = {
        k: v
        for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE')
    }
    procs = [
        subprocess.Popen([
            sys.executable, '-c', _GLOO_WORKER, cbs_module.__file__,
            str(tmp_path / 'pg'),
            str(tmp_path / f'rank{r}.pt'),
            str(r)
        ],
                         env=env) for r in (0, 1)
    ]
    try:
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0]
    out = [torch.load(tmp_path / f'rank{r}.pt') for r in (0, 1)]
    assert out[0]['world_size'] == out[1]['world_size'] == 2
    assert out[0]['seed'] == out[1]['seed']
    _with_dist(monkeypatch, 0, 1)
    single = ClassBalancedSampler(
        LabelledSet(counts=COUNTS, seed=None),
        num_samples=102,
        seed=out[0]['seed'])
    whole = _draw(single, epoch=3)
    assert len(out[0]['indices']) == len(out[1]['indices']) == 51
    assert whole[0::2] == out[0]['indices']
    assert whole[1::2] == out[1]['indices']
