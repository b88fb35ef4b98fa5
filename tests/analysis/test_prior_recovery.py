"""Prior recovery: planted priors come back, errors are clear."""
import glob
import json
import os.path as osp
import runpy
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from analysis_helpers import REPO, save_checkpoint
from mmengine.config import ConfigDict
from scipy import stats as sps

from mmnpe.analysis import (build_model, build_train_set, load_config,
                            prior_recovery, prior_recovery_stats, rankdata,
                            train_set_cfg)
from mmnpe.analysis.builder import build_dataloader


def test_stats_closed_form():
    x = np.log(np.array([500., 200., 50., 10., 2.]) / 762)
    out = prior_recovery_stats(2 * x + 1, x)
    assert out['slope'] == pytest.approx(2, abs=1e-12)
    assert out['intercept'] == pytest.approx(1, abs=1e-12)
    assert out['pearson'] == pytest.approx(1, abs=1e-12)
    assert out['spearman'] == 1 and out['num_classes'] == 5
    # Decreasing: correlations -1, slope negative.
    out = prior_recovery_stats(-0.5 * x, x)
    assert out['slope'] == pytest.approx(-0.5) and out['spearman'] == -1


def test_stats_match_references_with_noise():
    rng = np.random.RandomState(0)
    x = np.log(rng.uniform(1, 1000, 30))
    y = 0.8 * x - 3 + rng.normal(0, 0.7, 30)
    out = prior_recovery_stats(y, x)
    slope, intercept = np.polyfit(x, y, 1)
    assert out['slope'] == pytest.approx(slope, rel=1e-10)
    assert out['intercept'] == pytest.approx(intercept, rel=1e-10)
    assert out['pearson'] == pytest.approx(sps.pearsonr(x, y)[0], rel=1e-10)
    assert out['spearman'] == pytest.approx(sps.spearmanr(x, y)[0], rel=1e-10)


def test_ranks_average_ties():
    np.testing.assert_array_equal(
        rankdata([3., 1., 2., 2.]), [4., 1., 2.5, 2.5])


@pytest.mark.parametrize('estimate,log_freq,match', [
    ([1., 2.], [0., 0.], 'two different values'),
    ([1.], [0.], 'two different values'),
    ([1., np.nan], [0., 1.], 'finite'),
    ([1., 2., 3.], [0., 1.], 'one shape'),
])
def test_stats_bad_input(estimate, log_freq, match):
    with pytest.raises(ValueError, match=match):
        prior_recovery_stats(estimate, log_freq)


def test_constant_estimate_has_undefined_correlation_not_a_number():
    out = prior_recovery_stats([1., 1., 1.], [0., 1., 2.])
    assert out['slope'] == 0 and np.isnan(out['pearson'])


def test_train_set_cfg_puts_the_test_pipeline_everywhere():
    test_pipe = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
    cfg = ConfigDict(
        train_dataloader=dict(
            dataset=dict(
                type='RepeatDataset',
                times=40000,
                dataset=dict(
                    type='ConcatDataset',
                    datasets=[
                        dict(type='A', pipeline=['aug']),
                        dict(
                            type='ClassBalancedDataset',
                            dataset=dict(type='B', pipeline=['aug']))
                    ]))),
        test_dataloader=dict(dataset=dict(type='A', pipeline=test_pipe)))
    out = train_set_cfg(cfg)
    # Wrappers are dropped when built (build_train_set), as for counting.
    assert out['type'] == 'RepeatDataset'
    leaves = out['dataset']['datasets']
    assert [d['type'] for d in leaves] == ['A', 'ClassBalancedDataset']
    assert leaves[0]['pipeline'] == test_pipe
    assert leaves[1]['dataset']['pipeline'] == test_pipe
    # The config itself is untouched.
    assert cfg.train_dataloader.dataset.dataset.datasets[0].pipeline == ['aug']


def test_build_train_set_reads_each_image_once_with_the_test_pipeline(cls_ce):
    config, _ = cls_ce
    cfg = load_config(config)
    plain = build_train_set(cfg)
    digits = dict(cfg.train_dataloader.dataset)
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset',
        times=7,
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                digits,
                dict(
                    type='ClassBalancedDataset',
                    oversample_thr=0.5,
                    dataset=digits)
            ]))
    both = build_train_set(cfg)
    assert len(both) == 2 * len(plain)
    # The test pipeline (PackInputs only): no random crop, images as stored.
    for i in (0, len(plain) - 1):
        img = plain.get_data_info(i)['img']
        want = torch.from_numpy(img).permute(2, 0, 1)
        assert torch.equal(both[i]['inputs'], want)
        assert torch.equal(both[len(plain) + i]['inputs'], want)


def _train_eta(model, config):
    """Independent reference: eta of every training sample, labels."""
    cfg = load_config(config)
    loader = build_dataloader(
        cfg.test_dataloader, dataset=build_train_set(cfg))
    etas, labels = [], []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            h = model.head.pre_logits(model.extract_feat(data['inputs']))
            etas.append(model.head.estimate_prior(h))
            labels.append(
                torch.cat([s.gt_label for s in data['data_samples']]))
    return torch.cat(etas).double(), torch.cat(labels)


def test_cls_planted_prior_is_recovered_exactly(cls_npe):
    # The fixture's PEM outputs -log(frequency): eta = log prior, centred.
    config, ckpt = cls_npe
    result = prior_recovery(config, ckpt)
    counts = np.array(result['train_counts'], dtype=float)
    log_freq = np.log(counts / counts.sum())
    np.testing.assert_allclose(result['log_freq'], log_freq, rtol=1e-12)
    np.testing.assert_allclose(
        result['estimate'], log_freq - log_freq.mean(), atol=1e-5)
    s = result['stats']
    assert s['slope'] == pytest.approx(1, abs=1e-5)
    assert s['pearson'] == pytest.approx(1, abs=1e-9)
    assert s['spearman'] == 1
    assert s['intercept'] == pytest.approx(-log_freq.mean(), abs=1e-5)
    assert result['task'] == 'cls' and result['count_kind'] == 'images'
    # Every training image counted once (no augmentation, no repeats).
    assert result['samples_per_class'] == result['train_counts']


def test_cls_planted_prior_with_noise(cls_npe, tmp_path):
    config, ckpt = cls_npe
    model = build_model(load_config(config), ckpt)
    rng = np.random.RandomState(0)
    freq = np.array(model.head.pems.bias.detach().double().neg().exp())
    log_freq = np.log(freq / freq.sum())
    noise = rng.normal(0, 0.3, 10)
    # eta = 0.6 log prior + class noise + per-sample noise (W h).
    model.head.pems.bias.data.copy_(torch.tensor(-(0.6 * log_freq + noise)))
    torch.manual_seed(0)
    torch.nn.init.normal_(model.head.pems.weight, std=0.005)
    noisy = save_checkpoint(model, tmp_path / 'noisy.pth')
    result = prior_recovery(config, noisy)

    eta, labels = _train_eta(model, config)
    expected = np.array([eta[labels == c, c].mean() for c in range(10)])
    np.testing.assert_allclose(result['estimate'], expected, atol=1e-6)
    np.testing.assert_allclose(
        result['estimate_all'], eta.mean(0).numpy(), atol=1e-6)
    ref = prior_recovery_stats(expected, log_freq)
    for key in ('pearson', 'spearman', 'slope', 'intercept'):
        assert result['stats'][key] == pytest.approx(ref[key], abs=1e-6)
    # The planted slope comes back up to the noise.
    assert abs(result['stats']['slope'] - 0.6) < 0.25
    assert result['stats']['pearson'] > 0.8


def test_cls_subset_keeps_full_training_frequency(cls_npe):
    config, ckpt = cls_npe
    part = prior_recovery(config, ckpt, num_samples=50, seed=1)
    assert part['num_samples'] == 50
    assert sum(part['samples_per_class']) == 50
    full = build_train_set(load_config(config))
    assert part['train_counts'] == full.metainfo['train_class_counts']
    assert len(full) > 50
    again = prior_recovery(config, ckpt, num_samples=50, seed=1)
    assert again['samples_per_class'] == part['samples_per_class']
    with pytest.raises(ValueError, match='num_samples must be an int >= 1'):
        prior_recovery(config, ckpt, num_samples=0)


def _label_pixels(root):
    counts = np.zeros(6, dtype=np.int64)
    for f in glob.glob(osp.join(root, 'ann_dir', 'train', '*.png')):
        counts += np.bincount(
            mmcv.imread(f, 'unchanged').reshape(-1), minlength=6)
    return counts


def test_seg_planted_prior_weighted_by_pixels(seg_npe, synthetic_root,
                                              tmp_path):
    config, ckpt = seg_npe
    model = build_model(load_config(config), ckpt)
    pixels = _label_pixels(synthetic_root)
    present = pixels > 0
    log_freq = np.log(np.where(present, pixels, 1) / pixels.sum())
    conv = model.pem_heads[0].conv_seg
    conv.weight.data.zero_()
    # sign -1: eta = -output, so this plants eta = 0.5 * log prior.
    conv.bias.data.copy_(torch.tensor(-0.5 * log_freq))
    planted = save_checkpoint(model, tmp_path / 'planted.pth')
    result = prior_recovery(config, planted)
    assert result['train_counts'] == pixels.tolist()
    assert result['count_kind'] == 'pixels'
    est = np.array([np.nan if v is None else v for v in result['estimate']])
    expected = 0.5 * (log_freq - log_freq.mean())
    np.testing.assert_allclose(est[present], expected[present], atol=1e-5)
    assert result['stats']['slope'] == pytest.approx(0.5, abs=1e-5)
    assert result['stats']['pearson'] == pytest.approx(1, abs=1e-9)


def test_seg_estimate_is_the_pixel_mean_of_the_true_class(seg_npe):
    # Random PEM: eta varies per pixel; reference computed directly (32x32
    # images, whole mode: the PEM output is already at label resolution).
    config, ckpt = seg_npe
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    result = prior_recovery(config, ckpt)
    loader = build_dataloader(
        cfg.test_dataloader, dataset=build_train_set(cfg))
    sums, counts = torch.zeros(6, dtype=torch.float64), torch.zeros(6)
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            eta = model.estimate_prior(model.extract_feat(data['inputs']))
            for e, sample in zip(eta, data['data_samples']):
                label = sample.gt_sem_seg.data[0]
                for c in range(6):
                    sums[c] += e[c][label == c].double().sum()
                    counts[c] += (label == c).sum()
    expected = (sums / counts).numpy()
    assert result['samples_per_class'] == counts.long().tolist()
    np.testing.assert_allclose(result['estimate'], expected, atol=1e-5)


def test_model_without_pems_is_a_clear_error(cls_ce):
    config, ckpt = cls_ce
    with pytest.raises(ValueError, match='LinearClsHead, which has none'):
        prior_recovery(config, ckpt)
    with pytest.raises(ValueError, match=r'num_pems is 0'):
        prior_recovery(
            config,
            ckpt,
            cfg_options={'model.head': dict(type='NPEClsHead', num_pems=0)})


def test_checkpoint_without_pems_is_a_clear_error(cls_npe, cls_ce, seg_npe,
                                                  tmp_path):
    with pytest.raises(
            ValueError,
            match=r'2 tensors the run uses as they are did not load: '
            r'head\.pems\.weight \(not in the checkpoint\), head\.pems\.bias'):
        prior_recovery(cls_npe[0], cls_ce[1])
    config, ckpt = seg_npe
    state = torch.load(ckpt)['state_dict']
    stock = {k: v for k, v in state.items() if 'pem_heads' not in k}
    path = tmp_path / 'stock.pth'
    torch.save(dict(meta={}, state_dict=stock), str(path))
    with pytest.raises(ValueError, match=r'pem_heads\.0\.conv_seg'):
        prior_recovery(config, str(path))


def test_cli_error_without_pems(cls_npe, cls_ce, monkeypatch):
    tool = runpy.run_path(osp.join(REPO, 'tools/analysis/prior_recovery.py'))
    monkeypatch.setattr(
        sys, 'argv',
        ['prior_recovery.py', cls_npe[0], cls_ce[1], '--device', 'cpu'])
    with pytest.raises(
            ValueError,
            match='an NPE config needs a checkpoint with its PEMs'):
        tool['main']()


def test_cli_writes_json_and_png(cls_npe, tmp_path):
    config, ckpt = cls_npe
    out = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/analysis/prior_recovery.py'), config, ckpt,
        '--out-dir',
        str(tmp_path), '--num-samples', '80', '--device', 'cpu'
    ],
                         capture_output=True,
                         text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with open(tmp_path / 'prior_recovery.json') as f:
        result = json.load(f)
    expected = prior_recovery(config, ckpt, num_samples=80)
    assert result['stats'] == pytest.approx(expected['stats'])
    assert result['num_samples'] == 80 and len(result['classes']) == 10
    png = (tmp_path / 'prior_recovery.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
