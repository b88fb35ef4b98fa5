"""The analysis tools on mmseg's own segmentors whose decode path is not a
plain ``decode_head.forward()``: OCRNet (a cascade, ``decode_head`` a
``ModuleList``; NPE-LA and post-hoc LA), DANet and EncNet (heads whose
``forward`` returns a tuple). Each is its stock config (``mmseg::``), shrunk
for the CPU, with the mmnpe segmentor type on top, on the synthetic set.

- one-pass sweep point == separate evaluation with that scale factor, area
  for area, in whole and slide inference;
- at scale 0 the sweep's logits are bit for bit those of the stock
  segmentor's predict with the same weights;
- prior recovery runs and gives finite statistics over the pixels;
- the command lines (``tools/analysis/*.py``) run on a cascade.
"""
import copy
import glob
import json
import math
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from analysis_helpers import (AREAS, perturbed_state, save_checkpoint,
                              separate_evaluation)
from launch_helpers import run_tool
from mmseg.registry import MODELS
from stock_config_helpers import (DANET, ENCNET, OCRNET, stock_twin_cfg,
                                  tiny_stock_runner_cfg)

from mmnpe.analysis import (build_model, load_config, prior_recovery,
                            scale_sweep, seg_logits_and_estimate,
                            sweep_segmentor)
from mmnpe.analysis.builder import build_dataloader, eval_dataloader_cfg
from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                          write_class_counts)

SCALES = [0, 0.05, 0.2, 1, 5]
SLIDE = {
    'model.test_cfg': dict(mode='slide', crop_size=(24, 24), stride=(16, 16))
}
MODES = dict(whole={}, slide=SLIDE)

# id: ((stock config, shrink, PEM keys), segmentor type).
CASES = {
    'OCRNet-NPECascade': (OCRNET, 'NPECascadeEncoderDecoder'),
    'DANet-NPE': (DANET, 'NPEEncoderDecoder'),
    'EncNet-NPE': (ENCNET, 'NPEEncoderDecoder'),
    'OCRNet-LogitAdjustCascade': (OCRNET, 'LogitAdjustCascadeEncoderDecoder'),
}
# The mmnpe keys of each segmentor, which its stock twin does not have.
OWN_KEYS = dict(
    NPECascadeEncoderDecoder=('pem_head', 'scale_factor'),
    NPEEncoderDecoder=('pem_head', 'scale_factor'),
    LogitAdjustCascadeEncoderDecoder=('class_counts', 'tau'))


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threads only add overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model_keys(seg_type, pem, counts_json):
    if seg_type.startswith('LogitAdjust'):
        return dict(type=seg_type, class_counts=counts_json, tau=1.0)
    return dict(
        type=seg_type,
        scale_factor=1.0,
        pem_head=dict(type='PEMFCNHead', num_classes=6, **pem))


@pytest.fixture(scope='module')
def stock_cases(tmp_path_factory, synthetic_root):
    """case id -> (config file, checkpoint), each built once. NPE: the
    model's own checkpoint, its PEM scaled up (N(0, 0.5)) so that alpha
    changes predictions. Post-hoc LA: the stock twin's checkpoint (no
    class_counts in it) and the pixel counts the counting tool writes."""
    built = {}

    def get(case):
        if case not in built:
            built[case] = _build_case(case, tmp_path_factory.mktemp(case),
                                      synthetic_root)
        return built[case]

    return get


def _build_case(case, folder, data_root):
    (stock, options, pem), seg_type = CASES[case]
    counts_json = str(folder / 'pixel_counts.json')
    cfg = tiny_stock_runner_cfg(stock, options, str(folder / 'work'),
                                data_root,
                                **_model_keys(seg_type, pem, counts_json))
    config = str(folder / f'{case}.py')
    cfg.dump(config)
    if seg_type.startswith('LogitAdjust'):
        write_class_counts(
            count_dataset_classes(build_counting_dataset(load_config(config))),
            counts_json)
        torch.manual_seed(0)
        model = MODELS.build(stock_twin_cfg(cfg, *OWN_KEYS[seg_type]))
    else:
        model = build_model(load_config(config))
        torch.manual_seed(0)
        for p in model.pem_heads.parameters():
            torch.nn.init.normal_(p, std=0.5)
    model.load_state_dict(perturbed_state(model))
    return config, save_checkpoint(model, folder / 'model.pth')


def _loader(cfg):
    return build_dataloader(eval_dataloader_cfg(cfg, 'test'))


@pytest.mark.parametrize('mode', list(MODES))
@pytest.mark.parametrize('case', list(CASES))
def test_sweep_points_equal_separate_evaluations(stock_cases, case, mode):
    config, ckpt = stock_cases(case)
    cfg = load_config(config, MODES[mode])
    model = build_model(cfg, ckpt)
    assert type(model).__name__ == CASES[case][1]
    loader = _loader(cfg)
    classes = loader.dataset.metainfo['classes']
    state = sweep_segmentor(model, loader, SCALES, num_classes=6)
    inter = set()
    for i, s in enumerate(SCALES):
        model.scale_factor = s
        expected, _ = separate_evaluation(model, loader, classes)
        got = state.areas(i)
        for key in AREAS:
            assert torch.equal(got[key], expected[key]), (mode, s, key)
        inter.add(tuple(expected['intersect'].tolist()))
    # Not vacuous: the scale factor changes the predictions.
    assert len(inter) >= 2


@pytest.mark.parametrize('case', list(CASES))
def test_sweep_metrics_equal_separate_evaluations(stock_cases, case):
    config, ckpt = stock_cases(case)
    result = scale_sweep(config, ckpt, SCALES, split='test')
    assert result['task'] == 'seg' and result['scales'] == SCALES
    cfg = load_config(config)
    model = build_model(cfg, ckpt)
    loader = _loader(cfg)
    for i, s in enumerate(SCALES):
        model.scale_factor = s
        _, metrics = separate_evaluation(model, loader, result['classes'])
        for key in ('mIoU', 'mDice', 'mAcc', 'aAcc'):
            assert result['per_scale'][i][key] == float(metrics[key]), (s, key)


@pytest.mark.parametrize('mode', list(MODES))
@pytest.mark.parametrize('case', list(CASES))
def test_scale_zero_logits_are_the_stock_segmentors(stock_cases, case, mode):
    config, ckpt = stock_cases(case)
    cfg = load_config(config, MODES[mode])
    model = build_model(cfg, ckpt)
    stock = MODELS.build(stock_twin_cfg(cfg, *OWN_KEYS[CASES[case][1]]))
    missing, _ = stock.load_state_dict(
        torch.load(ckpt)['state_dict'], strict=False)
    assert not missing
    stock.eval()
    model.scale_factor = 0.0
    with torch.no_grad():
        for batch in _loader(cfg):
            data = model.data_preprocessor(copy.deepcopy(batch), False)
            maps = seg_logits_and_estimate(model, data['inputs'],
                                           data['data_samples'])
            ref = stock.test_step(copy.deepcopy(batch))
            for (z, eta), sample in zip(maps, ref):
                assert torch.equal(z, sample.seg_logits.data)
                assert z.shape == eta.shape == (6, 32, 32)
                assert torch.isfinite(eta).all() and eta.abs().max() > 0


def _train_label_pixels(root):
    counts = np.zeros(6, dtype=np.int64)
    for f in glob.glob(osp.join(root, 'ann_dir', 'train', '*.png')):
        counts += np.bincount(
            mmcv.imread(f, 'unchanged').reshape(-1), minlength=6)
    return counts


@pytest.mark.parametrize('case', list(CASES))
def test_prior_recovery_gives_finite_statistics(stock_cases, case,
                                                synthetic_root):
    config, ckpt = stock_cases(case)
    result = prior_recovery(config, ckpt)
    assert result['task'] == 'seg' and result['count_kind'] == 'pixels'
    pixels = _train_label_pixels(synthetic_root)
    # Every labelled training pixel counted once, per true class.
    assert result['samples_per_class'] == pixels.tolist()
    assert result['train_counts'] == pixels.tolist()
    stats = result['stats']
    assert stats['num_classes'] == int((pixels > 0).sum()) >= 3
    for key in ('pearson', 'spearman', 'slope', 'intercept'):
        assert math.isfinite(stats[key]), (key, stats)
    if CASES[case][1].startswith('LogitAdjust'):
        # A fixed prior from these very pixels: recovered exactly.
        assert stats['slope'] == pytest.approx(1, abs=1e-5)
        assert stats['pearson'] == pytest.approx(1, abs=1e-9)


def _run_tool(script, *args):
    """``tools/analysis/SCRIPT ARGS...`` (its ``main(argv)`` in this
    process, from a fresh interpreter's state)."""
    run_tool(osp.join('analysis', script), args).wait()


def test_command_lines_run_on_a_cascade(stock_cases, tmp_path):
    config, ckpt = stock_cases('OCRNet-NPECascade')
    _run_tool('scale_sweep.py', config, ckpt, '--scales', '0', '0.2', '5',
              '--split', 'test', '--out-dir', str(tmp_path), '--device', 'cpu')
    with open(tmp_path / 'scale_sweep.json') as f:
        sweep = json.load(f)
    expected = scale_sweep(config, ckpt, [0, 0.2, 5], split='test')
    assert sweep['curves'] == expected['curves']
    assert len(set(sweep['curves']['mIoU'])) >= 2
    _run_tool('prior_recovery.py', config, ckpt, '--out-dir', str(tmp_path),
              '--device', 'cpu')
    with open(tmp_path / 'prior_recovery.json') as f:
        recovery = json.load(f)
    assert recovery['stats'] == pytest.approx(
        prior_recovery(config, ckpt)['stats'])
    for name in ('scale_sweep.png', 'prior_recovery.png'):
        assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
