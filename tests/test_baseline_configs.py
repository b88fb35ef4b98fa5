"""Segmentation configs of the count-based baselines (post-hoc LA, Balanced
Softmax / Sigmoid, LA loss): on data written in each data set's real layout,
the counts tool's JSON is produced through the config, the model is built
from it, the config's hooks run, and one training (or test) iteration runs
on CPU."""
import copy
import glob
import json
import os.path as osp
import re
import types

import mmcv
import mmseg
import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml
from helpers import random_seg_batch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, HOOKS, MODELS, init_default_scope

from mmnpe.engine import (ClassCountsMixin, build_counting_dataset,
                          count_dataset_classes, write_class_counts)

SIZE = 32  # CPU-sized inputs (UNet needs a multiple of 16)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'baselines', '*.py')))
DEMO = [
    c for c in sorted(
        glob.glob(osp.join(REPO, 'configs', 'demo', '*synthetic*.py')))
    if osp.basename(c).startswith(('la-', 'balanced-'))
]


def _id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def _write_stare(root):
    rng = np.random.default_rng(0)
    for split in ('training', 'validation'):
        for i in range(2):
            img = rng.integers(0, 255, (70, 60, 3), dtype=np.uint8)
            ann = (rng.random((70, 60)) > 0.9).astype(np.uint8)
            mmcv.imwrite(img, osp.join(root, 'images', split, f'im{i}.png'))
            mmcv.imwrite(ann,
                         osp.join(root, 'annotations', split, f'im{i}.ah.png'))


def _write_ade(root):
    """Every one of the 150 classes present (0 is reduced away)."""
    for split in ('training', 'validation'):
        for i in range(2):
            img = np.full((30, 40, 3), 100 + i, dtype=np.uint8)
            ann = (np.arange(30 * 40) % 151).reshape(30, 40).astype(np.uint8)
            mmcv.imwrite(
                img, osp.join(root, 'images', split,
                              f'ADE_{split}_{i:08d}.jpg'))
            mmcv.imwrite(
                ann,
                osp.join(root, 'annotations', split,
                         f'ADE_{split}_{i:08d}.png'))


def _data_root(cfg, tmp_path, synthetic_root):
    ds = cfg.train_dataloader.dataset
    ds = ds.get('dataset', ds)
    if ds.type == 'STAREDataset':
        _write_stare(str(tmp_path))
        return str(tmp_path)
    if ds.type == 'ADE20KDataset':
        _write_ade(str(tmp_path))
        return str(tmp_path)
    assert ds.type == 'SyntheticLTDataset', ds.type
    return synthetic_root


def _set_data_root(cfg, root):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[key].dataset
        ds.get('dataset', ds).data_root = root


def _point_counts_to(node, path):
    """Replace every counts-JSON path in a model config; how many."""
    found = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'class_counts' and isinstance(value, str):
                node[key] = path
                found += 1
            else:
                found += _point_counts_to(value, path)
    elif isinstance(node, list):
        found += sum(_point_counts_to(v, path) for v in node)
    return found


def prepare(path, tmp_path, synthetic_root):
    """The documented workflow: count through the config, write the JSON,
    point the config at it, build model and data set, run the hooks."""
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    _set_data_root(cfg, _data_root(cfg, tmp_path, synthetic_root))
    counts = count_dataset_classes(build_counting_dataset(cfg))
    json_path = str(tmp_path / 'pixel_counts.json')
    write_class_counts(counts, json_path)
    model_cfg = copy.deepcopy(cfg.model)
    assert _point_counts_to(model_cfg, json_path) >= 1
    model_cfg.data_preprocessor.size = (SIZE, SIZE)
    if model_cfg.test_cfg.get('mode') == 'slide':
        model_cfg.test_cfg.update(crop_size=(SIZE, SIZE), stride=(24, 24))
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    runner = types.SimpleNamespace(
        model=model,
        cfg=cfg,
        train_dataloader=types.SimpleNamespace(
            dataset=dataset,
            batch_size=cfg.train_dataloader.get('batch_size')))
    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    assert 'ClassCountsHook' in [type(h).__name__ for h in hooks]
    for stage in ('before_run', 'before_train'):
        for hook in hooks:
            getattr(hook, stage)(runner)
    return cfg, model, counts, hooks, runner


@pytest.mark.parametrize('path', CONFIGS + DEMO, ids=_id)
def test_baseline_config_runs_one_iteration(path, tmp_path, synthetic_root):
    cfg, model, counts, hooks, runner = prepare(path, tmp_path, synthetic_root)
    head = model.decode_head
    if isinstance(head, nn.ModuleList):  # a cascade predicts with its last
        head = head[-1]
    assert counts['classes'] == list(
        runner.train_dataloader.dataset.metainfo['classes'])
    assert len(counts['counts']) == head.num_classes
    counted = [m for m in model.modules() if isinstance(m, ClassCountsMixin)]
    assert counted
    for m in counted:
        assert m.class_counts.tolist() == counts['counts']

    name = osp.basename(path)
    posthoc = 'la-posthoc' in name
    if not posthoc:
        before = copy.deepcopy(model.backbone.state_dict())
        model.train()
        for hook in hooks:
            hook.before_train_iter(runner, 0)
        batch = random_seg_batch(
            batch_size=2, size=SIZE, num_classes=head.num_classes)
        log = model.train_step(batch,
                               build_optim_wrapper(model, cfg.optim_wrapper))
        assert torch.isfinite(log['loss'])
        loss_type = head.loss_decode.__class__.__name__
        assert any(k.startswith('decode.loss_') for k in log), log
        assert loss_type in ('BalancedSoftmaxLoss', 'BalancedSigmoidLoss',
                             'LogitAdjustLoss')
        frozen = any(type(h).__name__ == 'FrozenBackboneHook' for h in hooks)
        after = model.backbone.state_dict()
        # Frozen: backbone weights and BN statistics bit-identical.
        assert frozen == all(torch.equal(before[k], after[k]) for k in after)
        if frozen:
            assert not model.with_auxiliary_head
            assert not any('aux' in k for k in log)

    model.eval()
    with torch.no_grad():
        out = model.test_step(
            random_seg_batch(
                batch_size=1, size=SIZE, num_classes=head.num_classes))
    assert out[0].seg_logits.data.shape == (head.out_channels, SIZE, SIZE)
    assert out[0].pred_sem_seg.data.max() < head.num_classes


@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if 'la-posthoc' in c], ids=_id)
def test_posthoc_configs_load_the_stock_checkpoint_and_take_tau(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == ('LogitAdjustCascadeEncoderDecoder'
                              if cfg.model.get('num_stages') else
                              'LogitAdjustEncoderDecoder')
    assert cfg.load_from.startswith('https://download.openmmlab.com/')
    assert cfg.custom_imports.imports == ['mmnpe']
    tau = float(osp.splitext(osp.basename(path))[0].rsplit('_t', 1)[1])
    assert cfg.model.tau == tau
    cfg.merge_from_dict({'model.tau': 0.5})  # --cfg-options model.tau=0.5
    assert cfg.model.tau == 0.5


@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if 'ocrnet' in osp.basename(c)], ids=_id)
def test_cascade_posthoc_config_loads_the_base_configs_model_zoo_weights(path):
    """OCRNet's post-hoc LA config: the cascade segmentor on the stock
    config, with the checkpoint mmseg's model zoo lists for that config."""
    with open(path) as f:
        base = re.search(r"_base_ = 'mmseg::(.+)'", f.read()).group(1)
    mim = osp.join(osp.dirname(mmseg.__file__), '.mim')
    with open(osp.join(mim, 'configs', osp.dirname(base),
                       'metafile.yaml')) as f:
        zoo = yaml.safe_load(f)['Models']
    weights = [m['Weights'] for m in zoo if m['Config'] == f'configs/{base}']
    cfg = Config.fromfile(path)
    assert cfg.load_from in weights
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(cfg.model)
    # The counts JSON the config names is written by the counting tool.
    model_cfg.class_counts = [1.0] * 150
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == 'LogitAdjustCascadeEncoderDecoder'
    assert isinstance(model.decode_head, nn.ModuleList)
    assert [type(h).__name__
            for h in model.decode_head] == ['FCNHead', 'OCRHead']
    assert model.tau == 1.0


@pytest.mark.parametrize(
    'path', [c for c in CONFIGS if 'balanced-softmax' in c], ids=_id)
def test_balanced_softmax_configs_use_the_pem_schedule(path):
    cfg = Config.fromfile(path)
    npe = Config.fromfile(
        osp.join(
            REPO, 'configs', 'npe', 'unet_stare_pem_fcn.py'
            if 'stare' in path else 'deeplabv3_ade20k_pem_aspp.py'))
    assert cfg.load_from == npe.load_from
    assert cfg.optim_wrapper == npe.optim_wrapper
    assert cfg.param_scheduler == npe.param_scheduler
    assert cfg.train_cfg == npe.train_cfg
    assert cfg.custom_hooks[0] == dict(
        type='FrozenBackboneHook', modules=['backbone'])
    # The PEM schedule's total batch of 16, checked against the launch.
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.custom_hooks[-1] == dict(
        type='TotalBatchSizeHook', total_batch_size=16)


def test_counts_json_with_other_class_names_is_refused(tmp_path,
                                                       synthetic_root):
    path = osp.join(REPO, 'configs', 'baselines',
                    'unet_stare_la-posthoc_t1.py')
    cfg, model, counts, hooks, runner = prepare(path, tmp_path, synthetic_root)
    with open(model.class_counts_file) as f:
        data = json.load(f)
    data['classes'] = ['background', 'artery']
    with open(model.class_counts_file, 'w') as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match="'artery' in the file, 'vessel'"):
        hooks[0].before_train(runner)
