"""The analysis tools on the fixed-prior models (post-hoc LA): the one-pass
sweep over tau equals separate evaluations at each tau, for
``LogitAdjustEncoderDecoder`` and a ``LogitAdjustClsHead`` model on a CE
checkpoint whose counts the tools take from the training set."""
import copy

import numpy as np
import pytest
import torch
from analysis_helpers import (CLS_CE, REPO, nearest_mean_classifier,
                              save_checkpoint, small_cls_config, write_config)
from helpers import tiny_runner_cfg
from mmengine.runner import Runner
from mmseg.evaluation import IoUMetric

from mmnpe.analysis import (build_model, load_config, prior_recovery,
                            scale_sweep, sweep_segmentor)
from mmnpe.analysis.builder import build_dataloader, eval_dataloader_cfg
from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                          write_class_counts)

TAUS = [0, 0.05, 0.2, 1, 5]
CLS_LA = f'{REPO}/configs/demo/la-posthoc_resnet32_digits-lt.py'
SLIDE = {
    'model.test_cfg': dict(mode='slide', crop_size=(24, 24), stride=(16, 16))
}


def _seg_la_config(folder, data_root, class_counts) -> str:
    cfg = tiny_runner_cfg(str(folder / 'work'), data_root)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    model = cfg['model']
    model.pop('pem_head')
    model.pop('scale_factor')
    model.update(
        type='LogitAdjustEncoderDecoder', class_counts=class_counts, tau=1.0)
    cfg['test_evaluator'] = dict(
        type='ClassWiseIoUMetric', iou_metrics=['mIoU', 'mDice'])
    cfg['val_evaluator'] = cfg['test_evaluator']
    return write_config(folder / 'seg_la.py', cfg)


@pytest.fixture(scope='module')
def seg_la(tmp_path_factory, synthetic_root):
    """(config, stock checkpoint): post-hoc LA with the pixel counts the
    counting tool writes, on a stock segmentor (no class_counts in it)."""
    folder = tmp_path_factory.mktemp('seg_la')
    counts_json = str(folder / 'pixel_counts.json')
    config = _seg_la_config(folder, synthetic_root, counts_json)
    write_class_counts(
        count_dataset_classes(build_counting_dataset(load_config(config))),
        counts_json)
    stock_cfg = copy.deepcopy(load_config(config).model)
    stock_cfg.type = 'EncoderDecoder'
    for key in ('class_counts', 'tau'):
        stock_cfg.pop(key)
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    stock = MODELS.build(stock_cfg)
    state = stock.state_dict()
    assert not any('class_counts' in k for k in state)
    return config, save_checkpoint(stock, folder / 'stock.pth')


def _areas(model, loader, num_classes=6):
    """IoUMetric's summed areas from the model's own test_step."""
    totals = None
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                pred = sample.pred_sem_seg.data.squeeze()
                res = IoUMetric.intersect_and_union(
                    pred,
                    sample.gt_sem_seg.data.squeeze().to(pred), num_classes,
                    255)
                totals = res if totals is None else [
                    a + b for a, b in zip(totals, res)
                ]
    return dict(zip(('intersect', 'union', 'pred', 'label'), totals))


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_seg_tau_sweep_equals_separate_evaluations(seg_la, mode):
    config, ckpt = seg_la
    cfg = load_config(config, SLIDE if mode == 'slide' else None)
    model = build_model(cfg, ckpt)
    assert type(model).__name__ == 'LogitAdjustEncoderDecoder'
    loader = build_dataloader(eval_dataloader_cfg(cfg, 'test'))
    state = sweep_segmentor(model, loader, TAUS, num_classes=6)
    preds = set()
    for i, tau in enumerate(TAUS):
        model.tau = tau
        expected = _areas(model, loader)
        for key, value in state.areas(i).items():
            assert torch.equal(value, expected[key]), (mode, tau, key)
        preds.add(tuple(expected['pred'].tolist()))
    # Not vacuous: tau moves the predictions.
    assert len(preds) >= 3


def test_seg_tau_sweep_metrics_equal_runner_tests(seg_la, tmp_path):
    config, ckpt = seg_la
    result = scale_sweep(config, ckpt, TAUS, split='test')
    assert result['task'] == 'seg'
    cfg = load_config(config)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    runner = Runner.from_cfg(cfg)
    for i, tau in enumerate(TAUS):
        runner.model.tau = tau
        metrics = runner.test()
        for key in ('mIoU', 'mDice', 'mAcc', 'aAcc'):
            assert result['per_scale'][i][key] == float(metrics[key]), (tau,
                                                                        key)


def test_seg_prior_recovery_of_a_fixed_prior_is_exact(seg_la):
    # eta is the centred log pixel frequency itself: slope 1, Pearson 1.
    config, ckpt = seg_la
    result = prior_recovery(config, ckpt)
    assert result['stats']['slope'] == pytest.approx(1, abs=1e-5)
    assert result['stats']['pearson'] == pytest.approx(1, abs=1e-9)


def test_seg_counts_from_the_dataset_are_refused_clearly(
        seg_la, synthetic_root, tmp_path):
    # Pixel counts are never computed on the fly (ClassCountsHook's rule).
    config = _seg_la_config(tmp_path, synthetic_root, None)
    with pytest.raises(ValueError, match='pixel counts are not computed'):
        build_model(load_config(config), seg_la[1])


@pytest.fixture(scope='module')
def cls_la(tmp_path_factory):
    """(LA post-hoc config, CE checkpoint): a nearest-class-mean CE model;
    the config counts the training images (class_counts=None)."""
    folder = tmp_path_factory.mktemp('cls_la')
    ce_config = small_cls_config(folder, CLS_CE)
    model = build_model(load_config(ce_config))
    torch.manual_seed(0)
    model.init_weights()
    nearest_mean_classifier(model, ce_config)
    ckpt = save_checkpoint(model, folder / 'ce.pth')
    assert not any('class_counts' in k for k in model.state_dict())
    return small_cls_config(folder, CLS_LA), ckpt


def test_cls_build_model_counts_the_training_set(cls_la):
    config, ckpt = cls_la
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    from mmpretrain.registry import DATASETS
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    expected = np.bincount(train_set.get_gt_labels(), minlength=10)
    assert model.head.class_counts.tolist() == expected.tolist()
    assert model.head.tau == 1.0


def test_cls_tau_sweep_equals_separate_evaluations(cls_la, tmp_path):
    config, ckpt = cls_la
    result = scale_sweep(config, ckpt, TAUS, split='test')
    assert result['task'] == 'cls'
    cfg = load_config(config)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    runner = Runner.from_cfg(cfg)
    for i, tau in enumerate(TAUS):
        runner.model.head.tau = tau
        # ClassCountsHook fills the counts before the first test.
        metrics = runner.test()
        mine = result['per_scale'][i]
        for key in ('top1', 'balanced', 'many', 'medium', 'few'):
            assert mine[key] == metrics[f'lt/{key}'], (tau, key)
        assert mine['per_class']['accuracy'] == metrics['lt/per_class']
    assert len(set(result['curves']['top1'])) >= 3
    # The same counts (the training set's) in both.
    np.testing.assert_array_equal(
        runner.model.head.class_counts.numpy(),
        build_model(load_config(config), ckpt).head.class_counts.numpy())


def test_cls_prior_recovery_of_a_fixed_prior_is_exact(cls_la):
    config, ckpt = cls_la
    result = prior_recovery(config, ckpt)
    counts = np.asarray(result['train_counts'], dtype=float)
    log_freq = np.log(counts / counts.sum())
    np.testing.assert_allclose(
        result['estimate'], log_freq - log_freq.mean(), atol=1e-6)
    assert result['stats']['pearson'] == pytest.approx(1, abs=1e-9)
