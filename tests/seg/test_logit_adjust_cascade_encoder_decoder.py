"""Post-hoc LA on a cascade segmentor (OCRNet, mmseg's own config):
``LogitAdjustCascadeEncoderDecoder`` gives the stock cascade's logits at
``tau = 0`` and ``stock - tau * (log pi - mean log pi)`` otherwise, loads a
stock checkpoint, shares its cascade logic with NPE-LA's cascade, and runs
under ``tools/test.py``."""
import copy

import pytest
import torch
from helpers import random_seg_batch
from launch_helpers import metrics, run_test
from mmengine.runner import load_checkpoint
from mmseg.models.segmentors import CascadeEncoderDecoder
from mmseg.registry import MODELS
from stock_config_helpers import (OCRNET, shrink, stock_config, stock_twin_cfg,
                                  tiny_stock_runner_cfg)

from mmnpe.analysis import scale_sweep
from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                          write_class_counts)
from mmnpe.functional import log_prior
from mmnpe.seg import (CascadePriorAdjustedMixin,
                       LogitAdjustCascadeEncoderDecoder,
                       LogitAdjustEncoderDecoder, NPECascadeEncoderDecoder)

NUM_CLASSES = 150  # the stock ADE20K config's
# A long tail over the 150 classes.
COUNTS = [float(round(1e6 * 0.93**c)) + 1 for c in range(NUM_CLASSES)]
SIZE = 32


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def la_model_cfg(**keys):
    """The stock OCRNet (HRNet-18-small) config with the post-hoc LA
    segmentor's lines, as a user writes them."""
    cfg = shrink(stock_config(OCRNET[0]), {})
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    cfg.model.update(
        type='LogitAdjustCascadeEncoderDecoder', class_counts=COUNTS, tau=1.0)
    cfg.model.update(keys)
    return cfg


def build(**keys):
    torch.manual_seed(0)
    return MODELS.build(la_model_cfg(**keys).model).eval()


def stock_twin(model, cfg):
    stock = MODELS.build(stock_twin_cfg(cfg, 'class_counts', 'tau'))
    missing, unexpected = stock.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing and unexpected == ['class_counts']
    return stock.eval()


def eta():
    lp = log_prior(torch.tensor(COUNTS, dtype=torch.float64))
    return (lp - lp.mean()).float().view(1, -1, 1, 1)


def test_registered_with_the_cascade_logic_written_once():
    assert MODELS.get('LogitAdjustCascadeEncoderDecoder') is \
        LogitAdjustCascadeEncoderDecoder
    for cls in (LogitAdjustCascadeEncoderDecoder, NPECascadeEncoderDecoder):
        assert issubclass(cls, CascadePriorAdjustedMixin)
        assert issubclass(cls, CascadeEncoderDecoder)
        for name in ('_decode_logits', '_check_decode_heads', 'encode_decode',
                     '_forward'):
            assert name not in vars(cls), (cls, name)
    assert issubclass(LogitAdjustCascadeEncoderDecoder,
                      LogitAdjustEncoderDecoder)
    model = build()
    assert isinstance(model.decode_head, torch.nn.ModuleList)
    assert model.tau == model.scale_factor == 1.0
    assert model.class_counts.tolist() == COUNTS


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_tau_zero_is_bit_for_bit_the_stock_cascade(mode):
    test_cfg = dict(mode=mode, crop_size=(24, 24), stride=(16, 16))
    cfg = la_model_cfg(tau=0.0, test_cfg=test_cfg)
    model = build(tau=0.0, test_cfg=test_cfg)
    stock = stock_twin(model, cfg)
    batch = random_seg_batch(size=SIZE, num_classes=NUM_CLASSES)
    with torch.no_grad():
        ours = model.test_step(copy.deepcopy(batch))
        ref = stock.test_step(copy.deepcopy(batch))
    for a, b in zip(ours, ref):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


@pytest.mark.parametrize('tau', [1.0, 0.3])
@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_tau_gives_stock_logits_minus_tau_centred_log_prior(tau, mode):
    test_cfg = dict(mode=mode, crop_size=(24, 24), stride=(16, 16))
    cfg = la_model_cfg(tau=tau, test_cfg=test_cfg)
    model = build(tau=tau, test_cfg=test_cfg)
    stock = stock_twin(model, cfg)
    data = model.data_preprocessor(
        random_seg_batch(size=SIZE, num_classes=NUM_CLASSES), False)
    inputs = data['inputs']
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        z = stock(inputs, mode='tensor')
        assert torch.equal(
            model(inputs, mode='tensor'), z - tau * eta().expand_as(z))
        ours = model.inference(inputs, copy.deepcopy(metas))
        ref = stock.inference(inputs, copy.deepcopy(metas))
    torch.testing.assert_close(ours, ref - tau * eta(), rtol=0, atol=1e-5)
    # Strong enough to change predictions.
    assert not torch.equal(ours.argmax(1), ref.argmax(1))


def test_stock_checkpoint_loads_with_only_class_counts_missing(tmp_path):
    cfg = la_model_cfg()
    torch.manual_seed(1)
    stock = MODELS.build(stock_twin_cfg(cfg, 'class_counts', 'tau'))
    path = tmp_path / 'stock.pth'
    torch.save(dict(meta={}, state_dict=stock.state_dict()), path)
    model = build()
    missing, unexpected = model.load_state_dict(
        torch.load(path)['state_dict'], strict=False)
    assert missing == ['class_counts'] and not unexpected
    load_checkpoint(model, str(path), strict=False)
    for key, value in stock.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.class_counts.tolist() == COUNTS  # the configured counts


def test_cascade_heads_on_the_plain_segmentor_point_to_the_cascade_one():
    cfg = la_model_cfg()
    cfg.model.type = 'LogitAdjustEncoderDecoder'
    cfg.model.pop('num_stages')
    with pytest.raises(
            TypeError,
            match=r"decode_head is a list of 2 heads .*"
            r"type='LogitAdjustCascadeEncoderDecoder' and keep num_stages, "
            r'instead of LogitAdjustEncoderDecoder'):
        MODELS.build(cfg.model)
    # A cascade stage as the only head names the cascade segmentor too.
    cfg.model.decode_head = cfg.model.decode_head[1]
    with pytest.raises(
            TypeError,
            match=r"OCRHead cannot carry a PEM: it is a cascade stage.*"
            r"type='LogitAdjustCascadeEncoderDecoder'"):
        MODELS.build(cfg.model)


def test_single_head_on_the_cascade_segmentor_points_to_the_plain_one():
    cfg = la_model_cfg()
    cfg.model.decode_head = cfg.model.decode_head[0]
    with pytest.raises(
            TypeError,
            match=r'decode_head of LogitAdjustCascadeEncoderDecoder must be '
            r"a list of >= 2 decode heads .*type='LogitAdjustEncoderDecoder'"):
        MODELS.build(cfg.model)


def test_pointrend_is_refused():
    cfg = stock_config('point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py')
    cfg.model.update(
        type='LogitAdjustCascadeEncoderDecoder', class_counts=COUNTS)
    with pytest.raises(
            TypeError,
            match=r'decode_head\[1\] PointHead cannot carry a PEM: its '
            r'predict\(\) is not predict_by_feat'):
        MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def tiny_cascade(tmp_path_factory, synthetic_root):
    """(config file, stock checkpoint): the stock OCRNet config as a post-hoc
    LA cascade on the synthetic set, its counts JSON written by the counting
    tool's functions, ClassCountsHook checking it; the checkpoint saved from
    the built stock CascadeEncoderDecoder."""
    folder = tmp_path_factory.mktemp('la_cascade')
    counts_json = str(folder / 'pixel_counts.json')
    cfg = tiny_stock_runner_cfg(
        OCRNET[0],
        OCRNET[1],
        str(folder / 'work'),
        synthetic_root,
        type='LogitAdjustCascadeEncoderDecoder',
        class_counts=counts_json,
        tau=1.0)
    cfg.custom_hooks = [dict(type='ClassCountsHook')]
    config = str(folder / 'la_cascade.py')
    cfg.dump(config)
    write_class_counts(
        count_dataset_classes(build_counting_dataset(cfg)), counts_json)
    torch.manual_seed(0)
    stock = MODELS.build(stock_twin_cfg(cfg, 'class_counts', 'tau'))
    state = stock.state_dict()
    g = torch.Generator().manual_seed(3)
    for key, value in state.items():
        # Trained-like BN statistics: the random heads predict several
        # classes, so equal metrics are not vacuous.
        if key.endswith('running_mean'):
            state[key] = value + 0.1 * torch.randn(value.shape, generator=g)
    ckpt = str(folder / 'stock.pth')
    torch.save(dict(meta={}, state_dict=state), ckpt)
    return config, ckpt


def test_tools_test_runs_it_and_matches_the_sweep(tiny_cascade, tmp_path):
    config, ckpt = tiny_cascade
    sweep = scale_sweep(config, ckpt, [0, 1], split='test')
    work = {tau: str(tmp_path / f'tau{tau}') for tau in (1, 0)}
    runs = [
        run_test(config, ckpt, work[1]),
        run_test(config, ckpt, work[0], '--cfg-options', 'model.tau=0')
    ]
    for run in runs:
        run.wait()
    for i, tau in enumerate((0, 1)):
        got = metrics(work[tau])
        for key in ('mIoU', 'mDice', 'mAcc', 'aAcc'):
            assert sweep['per_scale'][i][key] == got[key], (tau, key)
    # tau moved the predictions.
    assert sweep['per_scale'][0] != sweep['per_scale'][1]
