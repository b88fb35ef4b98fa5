"""tools/analysis/label_shift.py and mmnpe.analysis.label_shift: one cached
pass per split, then estimates and metrics; the 'model' row is what
tools/test.py reports, the oracle row what the target_prior key predicts,
segmentation estimates one dataset-level pixel prior."""
import copy
import json
import os.path as osp
import runpy
import sys

import pytest
import torch
from analysis_helpers import REPO, save_checkpoint
from mmengine.runner import Runner

from mmnpe.analysis import (LogitCache, build_model, collect_logits,
                            evaluate_label_shift, label_shift, load_config)
from mmnpe.analysis.builder import build_dataloader, eval_dataloader_cfg
from mmnpe.analysis.label_shift import shifted_loader_cfg
from mmnpe.functional import label_shift_profile

TOOL = osp.join(REPO, 'tools/analysis/label_shift.py')
SHIFT = dict(rho=5, direction='forward', seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def cls_ncm(cls_npe, tmp_path_factory):
    """(config, checkpoint): the nearest-class-mean classifier of
    ``cls_npe`` with its PEM output zeroed, so that it predicts well
    enough for the estimates to mean something."""
    config, ckpt = cls_npe
    model = build_model(load_config(config), ckpt)
    model.head.pems.bias.data.zero_()
    path = tmp_path_factory.mktemp('cls_ncm') / 'ncm.pth'
    return config, save_checkpoint(model, path)


def run_tool(monkeypatch, *args):
    tool = runpy.run_path(TOOL)
    monkeypatch.setattr(sys, 'argv', ['label_shift.py', *args])
    tool['main']()


def test_cli_writes_json_png_and_a_prior_the_model_key_reads(
        cls_ncm, tmp_path, monkeypatch):
    config, ckpt = cls_ncm
    run_tool(monkeypatch, config, ckpt, '--shift-rho', '5', '--out-dir',
             str(tmp_path), '--device', 'cpu')
    result = json.loads((tmp_path / 'label_shift.json').read_text())
    assert result['task'] == 'cls' and result['shift']['rho'] == 5
    assert result['row_order'] == [
        'model', 'calibrated', 'em', 'bbse', 'oracle', 'oracle_uncalibrated'
    ] or 'error' in result['estimates']['bbse']
    for row in result['rows'].values():
        for key in ('top1', 'balanced', 'many', 'few', 'ece'):
            assert 0 <= row[key] <= 100
    est = result['estimates']['em']
    assert isinstance(est['converged'], bool)
    assert sum(est['prior']) == pytest.approx(1)
    assert est['l1'] == pytest.approx(
        sum(abs(a - b) for a, b in zip(est['prior'], result['oracle_prior'])))
    # The oracle is the shifted subset's own prior.
    counts = (10 * label_shift_profile(10, 5.0)).int().clamp(min=1).tolist()
    assert result['oracle_prior'] == pytest.approx(
        [c / sum(counts) for c in counts])
    cal = result['calibration']
    assert cal['kind'] == 'bcts' and cal['temperature'] > 0
    assert cal['nll_after'] <= cal['nll_before']
    png = (tmp_path / 'label_shift.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
    record = json.loads((tmp_path / 'target_prior.json').read_text())
    assert record['kind'] == 'prior' and record['method'] == 'em'
    assert record['prior'] == est['prior']
    model = build_model(
        load_config(
            config,
            {'model.head.target_prior': str(tmp_path / 'target_prior.json')}),
        ckpt)
    torch.testing.assert_close(model.head.target_prior,
                               torch.tensor(est['prior'], dtype=torch.float64))


def test_rows_are_what_tools_test_reports(cls_ncm, tmp_path):
    """'model' is the configured model's test run on the shifted split;
    'oracle_uncalibrated' is the test run with target_prior = the true
    prior (the model key, through the Runner)."""
    config, ckpt = cls_ncm
    result = label_shift(config, ckpt, shift=SHIFT, methods=['em'])
    cfg = load_config(config)
    cfg.test_dataloader = shifted_loader_cfg(cfg.test_dataloader, **SHIFT)
    cfg.work_dir = str(tmp_path / 'a')
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    for key in ('top1', 'balanced', 'many', 'medium', 'few'):
        assert result['rows']['model'][key] == metrics[f'lt/{key}'], key
    keyed = copy.deepcopy(cfg)
    keyed.work_dir = str(tmp_path / 'b')
    keyed.model.head.target_prior = result['oracle_prior']
    metrics = Runner.from_cfg(keyed).test()
    assert result['rows']['oracle_uncalibrated']['top1'] == pytest.approx(
        metrics['lt/top1'])
    # A stock CE classifier (no key) is read through its plain head.
    ce = label_shift(
        config, ckpt, shift=SHIFT, cfg_options={'model.head.num_pems': 0})
    assert set(ce['rows']) >= {'model', 'em', 'oracle'}


def test_segmentation_one_pixel_prior_and_iou_metric_rows(seg_npe, tmp_path):
    config, ckpt = seg_npe
    result = label_shift(
        config, ckpt, val_split='val', target_split='test', max_pixels=None)
    assert result['task'] == 'seg' and len(result['source_prior']) == 6
    cfg = load_config(config)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert result['rows']['model'][key] == float(metrics[key]), key
    # One prior for the whole split: the estimate is a (C,) vector.
    est = result['estimates']['em']
    assert len(est['prior']) == 6 and sum(est['prior']) == pytest.approx(1)
    for row in result['rows'].values():
        assert 0 <= row['mIoU'] <= 100 and 0 <= row['aAcc'] <= 100


def test_pixel_subsample_is_seeded_and_the_oracle_counts_every_pixel(seg_npe):
    config, ckpt = seg_npe
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    loader = build_dataloader(eval_dataloader_cfg(cfg, 'test'))
    full = collect_logits(model, loader, max_pixels=None)
    small = collect_logits(model, loader, max_pixels=100, seed=1)
    again = collect_logits(model, loader, max_pixels=100, seed=1)
    other = collect_logits(model, loader, max_pixels=100, seed=2)
    n = len(loader.dataset)
    assert len(full.logits) == n * 32 * 32
    assert len(small.logits) == n * 50
    assert torch.equal(small.logits, again.logits)
    assert not torch.equal(small.logits, other.logits)
    assert torch.equal(small.label_counts, full.label_counts)
    assert int(full.label_counts.sum()) == int((full.labels != 255).sum())
    # Every cached row is one of the full cache's.
    rows = {tuple(r.tolist()) for r in full.logits[:, :2]}
    assert all(tuple(r.tolist()) in rows for r in small.logits[:20, :2])
    # The model's target_prior is left as configured.
    model.set_target_prior([1, 2, 3, 4, 5, 6])
    collect_logits(model, loader, max_pixels=10)
    assert model.target_prior_mode == 'given'


def test_evaluation_without_validation_and_without_target_labels():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 3, generator=g)
    target = LogitCache('cls', z, None, 200)
    result = evaluate_label_shift(target, None, ['em'], 'none')
    assert result['rows'] == {} and result['oracle_prior'] is None
    assert sum(result['estimates']['em']['prior']) == pytest.approx(1)
    with pytest.raises(ValueError, match='need a labelled validation split'):
        evaluate_label_shift(target, None, ['em'], 'bcts')
    with pytest.raises(ValueError, match='must be labelled'):
        evaluate_label_shift(target, target, ['em'])
    with pytest.raises(ValueError, match="method must be one of"):
        evaluate_label_shift(target, None, ['mlls'], 'none')


def test_bad_settings_are_clear_errors(seg_npe, monkeypatch, capsys):
    config, ckpt = seg_npe
    with pytest.raises(ValueError, match='shift .* is for classification'):
        label_shift(config, ckpt, shift=SHIFT)
    with pytest.raises(ValueError, match="target_split must be one of"):
        label_shift(config, ckpt, target_split='train')
    with pytest.raises(ValueError, match='max_pixels must be an int >= 1'):
        label_shift(config, ckpt, max_pixels=0)
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, config, ckpt, '--val', 'none')
    assert '--val none needs --calibration none' in capsys.readouterr().err
