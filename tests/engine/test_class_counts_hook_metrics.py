"""ClassCountsHook gives LongTailAccuracy the training set's images per
class: before validation and testing, every metric built with
``class_counts=None``, counted once, from the running training's data set
or else from the config's (augmentation off); a metric left without counts
keeps its error."""
import logging
import os.path as osp
import types

import pytest
from mmengine.config import Config

from mmnpe.cls import DigitsLT, LongTailAccuracy
from mmnpe.engine import ClassCountsHook, build_runner
from mmnpe.engine.hooks import class_counts_hook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = dict(
    type='DigitsLT',
    split='train',
    imbalance_ratio=50,
    pipeline=[dict(type='RandomCrop', crop_size=8, padding=1)])


def _cfg(**train_dataset):
    dataset = dict(TRAIN, **train_dataset)
    return Config(
        dict(
            default_scope='mmpretrain',
            train_dataloader=dict(batch_size=8, dataset=dataset)))


def _runner(cfg, *metrics, train_ds=None, split='test'):
    evaluator = types.SimpleNamespace(metrics=list(metrics))
    test_ds = DigitsLT(split='test', pipeline=[])
    runner = types.SimpleNamespace(
        model=types.SimpleNamespace(modules=lambda: []),
        cfg=cfg,
        **{
            f'{split}_dataloader': types.SimpleNamespace(dataset=test_ds),
            f'{split}_evaluator': evaluator
        })
    if train_ds is not None:
        runner.train_dataloader = types.SimpleNamespace(dataset=train_ds)
    return runner


@pytest.fixture
def counting(monkeypatch):
    """The data sets the hook counts, in order."""
    seen = []
    count = class_counts_hook.count_dataset_classes

    def spy(dataset, *args, **kwargs):
        seen.append(dataset)
        return count(dataset, *args, **kwargs)

    monkeypatch.setattr(class_counts_hook, 'count_dataset_classes', spy)
    return seen


def test_unset_metrics_get_the_configs_training_counts_counted_once(counting):
    want = DigitsLT(split='train', pipeline=[]).metainfo['train_class_counts']
    unset, other = LongTailAccuracy(), LongTailAccuracy(few_threshold=10)
    given = LongTailAccuracy(class_counts=[7] * 10)
    hook = ClassCountsHook()
    runner = _runner(_cfg(), unset, given, other)
    hook.before_test(runner)
    assert unset.class_counts == other.class_counts == want
    assert given.class_counts == [7] * 10
    # Built from cfg.train_dataloader with augmentation off, once.
    assert len(counting) == 1 and isinstance(counting[0], DigitsLT)
    assert counting[0].pipeline.transforms == []
    fresh = LongTailAccuracy()
    runner.test_evaluator.metrics.append(fresh)
    hook.before_test(runner)
    assert fresh.class_counts == want and len(counting) == 1


def test_during_training_the_metrics_get_the_trained_data_sets_counts(
        counting):
    """Validation inside training counts runner.train_dataloader.dataset
    (here rho = 10), not a data set rebuilt from the config (rho = 50)."""
    trained = DigitsLT(split='train', imbalance_ratio=10, pipeline=[])
    metric = LongTailAccuracy()
    hook = ClassCountsHook()
    runner = _runner(_cfg(), metric, train_ds=trained, split='val')
    hook.before_train(runner)
    hook.before_val(runner)
    assert metric.class_counts == trained.metainfo['train_class_counts']
    assert counting == [trained]
    assert metric.class_counts != DigitsLT(
        split='train', pipeline=[]).metainfo['train_class_counts']


def test_a_metric_left_without_counts_keeps_its_error():
    metric = LongTailAccuracy()
    runner = _runner(
        Config(dict(default_scope='mmpretrain', train_dataloader=None)),
        metric)
    ClassCountsHook().before_test(runner)  # no training set: nothing to do
    assert metric.class_counts is None
    metric.dataset_meta = DigitsLT(split='test', pipeline=[]).metainfo
    with pytest.raises(
            ValueError,
            match=r"class_counts=None and no dataset_meta\['"
            r"train_class_counts'\]: add custom_hooks=\[dict\("
            r"type='ClassCountsHook'\)\]"):
        metric.compute_metrics([(0, 0)])


def test_other_counts_in_the_test_sets_metainfo_are_replaced_with_a_warning(
        monkeypatch):
    logged = []
    monkeypatch.setattr(class_counts_hook, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    metric = LongTailAccuracy()
    # A test split given another rho than the training set's.
    metric.dataset_meta = DigitsLT(
        split='test', imbalance_ratio=10, pipeline=[]).metainfo
    ClassCountsHook().before_test(_runner(_cfg(), metric))
    want = DigitsLT(split='train', pipeline=[]).metainfo['train_class_counts']
    assert metric.class_counts == want
    warnings = [m for m, kw in logged if kw.get('level') == logging.WARNING]
    assert len(warnings) == 1 and "uses the training data set's" in \
        warnings[0]


def test_a_training_run_validates_with_the_training_counts(tmp_path):
    """The DigitsLT demo config (test split without rho) through
    build_runner: one epoch, validated with LongTailAccuracy whose groups
    come from the training set."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'demo', 'ce_resnet32_digits-lt.py'))
    cfg.work_dir = str(tmp_path)
    cfg.merge_from_dict({
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'train_dataloader.batch_size': 128,
        'val_dataloader.dataset.num_test_per_class': 3,
        'default_hooks.checkpoint.interval': 1,
        'log_level': 'WARNING'
    })
    runner = build_runner(cfg)
    runner.train()
    [metric] = runner.val_evaluator.metrics
    assert metric.class_counts == DigitsLT(
        split='train', pipeline=[]).metainfo['train_class_counts']
    assert 'train_class_counts' not in metric.dataset_meta
