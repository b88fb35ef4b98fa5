"""tools/analysis/label_shift.py and mmnpe.analysis.label_shift: one cached
pass per split, then estimates and metrics; the 'model' row is what
tools/test.py reports, the oracle row what the target_prior key predicts,
segmentation estimates one dataset-level pixel prior."""
import copy
import io
import json
import logging
import os.path as osp
import runpy
import sys

import pytest
import torch
from analysis_helpers import (CLS_CE, REPO, nearest_mean_classifier,
                              save_checkpoint, small_cls_config)
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmnpe.analysis import (LogitCache, build_model, collect_logits,
                            evaluate_label_shift, label_shift, load_config)
from mmnpe.analysis.builder import build_dataloader, eval_dataloader_cfg
from mmnpe.analysis.label_shift import (logits_prior, shifted_loader_cfg,
                                        target_prior_record)
from mmnpe.functional import label_shift_profile, load_target_prior
from mmnpe.functional.label_shift import floor_prior

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


@pytest.fixture(scope='module')
def cls_plain_ce(tmp_path_factory):
    """(config, checkpoint) of a stock CE classifier (LinearClsHead) whose
    scores hold under the training prior: the nearest-class-mean classifier
    plus the log training frequency, as CE training leaves it."""
    folder = tmp_path_factory.mktemp('cls_plain_ce')
    config = small_cls_config(folder, CLS_CE)
    model = build_model(load_config(config))
    torch.manual_seed(0)
    model.init_weights()
    y = nearest_mean_classifier(model, config)
    freq = torch.bincount(y, minlength=10).double()
    # Sharper class likelihoods (x 10), so the features tell the classes
    # apart against a prior that spans a factor of 50.
    model.head.fc.weight.data *= 10
    model.head.fc.bias.data *= 10
    model.head.fc.bias.data += (freq / freq.sum()).log().float()
    return config, save_checkpoint(model, folder / 'ce.pth')


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
    # The estimate, floored at PRIOR_FLOOR / C (an absent class's EM
    # estimate heads to 0).
    floored = floor_prior(torch.tensor(est['prior'], dtype=torch.float64))
    assert record['prior'] == floored.tolist()
    model = build_model(
        load_config(
            config,
            {'model.head.target_prior': str(tmp_path / 'target_prior.json')}),
        ckpt)
    torch.testing.assert_close(model.head.target_prior, floored)


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


class IgnoringLoader:
    """``loader`` with the first 8 (j + 1) label rows of the j-th image of
    every batch set to 255 (ignored): images with different numbers of
    labelled pixels."""

    def __init__(self, loader):
        self.loader, self.dataset = loader, loader.dataset

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            for j, sample in enumerate(batch['data_samples']):
                sample.gt_sem_seg.data[:, :8 * (j + 1)] = 255
            yield batch


def test_pixel_subsample_is_a_seeded_fixed_fraction_without_ignored_pixels(
        seg_npe):
    config, ckpt = seg_npe
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    loader = IgnoringLoader(build_dataloader(eval_dataloader_cfg(cfg, 'test')))
    full = collect_logits(model, loader, max_pixels=None)
    small = collect_logits(model, loader, max_pixels=1000, seed=1)
    again = collect_logits(model, loader, max_pixels=1000, seed=1)
    other = collect_logits(model, loader, max_pixels=1000, seed=2)
    n = len(loader.dataset)
    # Ignored pixels are in no cache (so in neither EM nor the metrics).
    valid = full.pixels_per_image
    assert valid == [1024 - 256 * (j % 2 + 1) for j in range(n)]
    assert (full.labels != 255).all() and sum(valid) == len(full.logits)
    assert sum(valid) == int(full.label_counts.sum())
    # The same fraction of every image's labelled pixels (rounded at
    # random), not the same number: the sample is pixel-weighted.
    fraction = 1000 / (n * 32 * 32)
    for k, v in zip(small.pixels_per_image, valid):
        assert abs(k - fraction * v) < 1
    assert small.pixels_per_image != [small.pixels_per_image[0]] * n
    assert (small.labels != 255).all()
    assert torch.equal(small.logits, again.logits)
    assert not torch.equal(small.logits, other.logits)
    assert torch.equal(small.label_counts, full.label_counts)
    # Every cached row is one of the full cache's.
    rows = {tuple(r.tolist()) for r in full.logits[:, :2]}
    assert all(tuple(r.tolist()) in rows for r in small.logits[:20, :2])
    # The model's target_prior is left as configured.
    model.set_target_prior([1, 2, 3, 4, 5, 6])
    collect_logits(model, loader, max_pixels=10)
    assert model.target_prior_mode == 'given'
    # Every pixel of a large split: refused with the size, before the pass
    # runs through.
    with pytest.raises(
            ValueError,
            match=r'about .* GiB \(\d+ images x 1024 '
            r'pixels x 6 classes'):
        collect_logits(model, loader, max_pixels=None, max_cache_bytes=1e4)


def test_evaluation_without_validation_and_without_target_labels():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 3, generator=g)
    target = LogitCache('cls', z, None, 200)
    source = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    result = evaluate_label_shift(
        target, None, ['em'], 'none', logits_prior=source)
    assert result['rows'] == {} and result['oracle_prior'] is None
    assert sum(result['estimates']['em']['prior']) == pytest.approx(1)
    assert result['source_prior'] == pytest.approx(source.tolist())
    # Without calibration the source prior is the logits' own: unknown is
    # refused, not guessed.
    with pytest.raises(ValueError, match='not known: no counts'):
        evaluate_label_shift(
            target, None, ['em'], 'none', logits_prior_note='no counts')
    with pytest.raises(ValueError, match='need a labelled validation split'):
        evaluate_label_shift(target, None, ['em'], 'bcts')
    with pytest.raises(ValueError, match='must be labelled'):
        evaluate_label_shift(target, target, ['em'])
    with pytest.raises(ValueError, match="method must be one of"):
        evaluate_label_shift(target, None, ['mlls'], 'none')


def test_bad_settings_are_clear_errors(seg_npe, monkeypatch, capsys, tmp_path):
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
    with pytest.raises(ValueError, match='more than max_cache_bytes'):
        run_tool(monkeypatch, config, ckpt, '--max-pixels', '0',
                 '--max-cache-gb', '1e-6', '--out-dir', str(tmp_path))


def test_ce_model_without_calibration_uses_the_training_prior(
        cls_plain_ce, tmp_path, monkeypatch):
    """A stock CE model with --val none: EM starts from the training prior
    (the one its scores hold under), says so, and beats a uniform source;
    --calibration temperature does the same."""
    config, ckpt = cls_plain_ce
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        run_tool(monkeypatch, config, ckpt, '--val', 'none', '--calibration',
                 'none', '--method', 'em', '--shift-rho',
                 '10', '--shift-direction', 'backward', '--out-dir',
                 str(tmp_path), '--device', 'cpu')
    finally:
        logger.removeHandler(handler)
    result = json.loads((tmp_path / 'label_shift.json').read_text())
    counts = torch.tensor(result['train_class_counts'], dtype=torch.float64)
    assert result['source_prior'] == pytest.approx(
        (counts / counts.sum()).tolist())
    assert result['source_prior_kind'].startswith('the training prior')
    assert 'source prior pi_s = the training prior' in log.getvalue()
    # The same caches from a uniform source (what the tool used before):
    # a worse estimate.
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    loader = build_dataloader(
        shifted_loader_cfg(
            eval_dataloader_cfg(cfg, 'test'), rho=10, direction='backward'))
    target = collect_logits(model, loader)
    uniform = evaluate_label_shift(
        target,
        None, ['em'],
        'none',
        logits_prior=torch.full((10, ), 0.1, dtype=torch.float64))
    assert result['estimates']['em']['l1'] < uniform['estimates']['em']['l1']
    est, before = result['estimates']['em'], uniform['estimates']['em']
    assert est['l1'] < before['l1'] - 0.3, (est['l1'], before['l1'])
    assert result['rows']['em']['top1'] > uniform['rows']['em']['top1'] + 10
    temp = label_shift(
        config,
        ckpt,
        val_split='val',
        calibration='temperature',
        methods=['em'],
        shift=dict(rho=10, direction='backward'))
    assert temp['source_prior'] == pytest.approx(result['source_prior'])


def test_source_priors_by_model_kind_and_the_refused_ones(
        cls_ncm, cls_plain_ce, seg_npe):
    config, ckpt = cls_ncm
    model = build_model(load_config(config), ckpt)
    train = torch.tensor([0.4, 0.2] + [0.05] * 8, dtype=torch.float64)
    prior, note = logits_prior(model, train)
    assert torch.equal(prior, torch.full((10, ), 0.1, dtype=torch.float64))
    assert 'uniform' in note
    model.head.scale_factor = 0.0
    prior, note = logits_prior(model, train)
    assert torch.equal(prior, train) and 'training prior' in note
    model.head.scale_factor = 0.5
    prior, note = logits_prior(model, train)
    assert prior is None and 'different for every sample' in note
    # NPE-LA at a partial correction without BCTS: refused before any pass.
    with pytest.raises(ValueError, match='different for every sample'):
        label_shift(
            config,
            ckpt,
            calibration='temperature',
            methods=['em'],
            cfg_options={'model.head.scale_factor': 0.5})
    # Post-hoc LA at tau: the counts to the power 1 - tau.
    la = build_model(
        load_config(
            cls_plain_ce[0], {
                'model.head.type': 'LogitAdjustClsHead',
                'model.head.class_counts': [40, 20] + [5] * 8,
                'model.head.tau': 0.25
            }), cls_plain_ce[1])
    prior, note = logits_prior(la)
    counts = torch.tensor([40, 20] + [5] * 8, dtype=torch.float64)
    want = (counts / counts.sum())**0.75
    torch.testing.assert_close(prior, want / want.sum())
    assert 'power 1 - tau = 0.75' in note
    # A stock segmentor's training pixel prior is not known to the tool.
    seg_config, seg_ckpt = seg_npe
    stock = load_config(seg_config)
    stock.model.type = 'EncoderDecoder'
    for key in ('pem_head', 'scale_factor'):
        stock.model.pop(key)
    with pytest.raises(ValueError, match='not known here'):
        label_shift(
            stock, None, calibration='none', methods=['em'], val_split=None)
    with pytest.raises(ValueError, match="after 'bcts'"):
        label_shift(seg_config, seg_ckpt, source_prior=[1] * 6)


def test_logits_are_cached_in_eval_mode_and_modes_restored(cls_ncm):
    config, ckpt = cls_ncm
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    loader = build_dataloader(eval_dataloader_cfg(cfg, 'test'))
    ref = collect_logits(model.eval(), loader)
    state = copy.deepcopy(model.state_dict())
    model.train()
    model.head.eval()
    modes = {n: m.training for n, m in model.named_modules()}
    cache = collect_logits(model, loader)
    # Batch statistics would give other logits (and move the running
    # statistics).
    assert torch.equal(cache.logits, ref.logits)
    assert {n: m.training for n, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_near_zero_estimates_are_floored_in_the_record(tmp_path):
    c = 150
    prior = [1e-106] + [(1 - 1e-106) / (c - 1)] * (c - 1)
    result = dict(
        estimates=dict(em=dict(prior=prior)),
        calibration_method='bcts',
        classes=[str(i) for i in range(c)])
    record = target_prior_record(result, 'em')
    assert min(record['prior']) == pytest.approx(record['floor'] / c, rel=1e-6)
    assert sum(record['prior']) == pytest.approx(1)
    path = tmp_path / 'target_prior.json'
    path.write_text(json.dumps(dict(kind='prior', prior=prior)))
    with pytest.warns(RuntimeWarning, match=r'class\(es\) \[0\]'):
        _, loaded = load_target_prior(str(path), c)
    assert float(loaded.log().min()) > -20
