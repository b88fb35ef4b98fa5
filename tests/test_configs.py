"""Every config under configs/ builds, trains one iteration and predicts on a
tiny random input on CPU; the paper configs keep their schedules and
stock checkpoints; their data pipelines read the real on-disk layouts."""
import copy
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from helpers import random_seg_batch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, HOOKS, MODELS, init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NPE_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'npe', '*.py')))
# <base>.py trains a PEM; <base>_test-alpha<a>.py tests its checkpoint at a.
TEST_ALPHA = '_test-alpha'
# The count-based baselines' configs need a counts JSON and a data set for
# their hooks: tests/test_baseline_configs.py runs them.
COUNT_BASELINES = ('la-', 'balanced-')
SEG_CONFIGS = NPE_CONFIGS + [
    c for c in sorted(
        glob.glob(osp.join(REPO, 'configs', 'demo', '*synthetic-lt*.py')))
    if not osp.basename(c).startswith(COUNT_BASELINES)
]


def _id(path):
    return osp.relpath(path, osp.join(REPO, 'configs'))


def load(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=_id)
def test_seg_config_trains_one_iteration_and_predicts(path):
    cfg = load(path)
    size = 64
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.data_preprocessor.size = (size, size)
    if model_cfg.test_cfg.get('mode') == 'slide':
        model_cfg.test_cfg.update(crop_size=(size, size), stride=(48, 48))
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    num_classes = model.decode_head.num_classes
    optim = build_optim_wrapper(model, cfg.optim_wrapper)

    hooks = [HOOKS.build(h) for h in cfg.get('custom_hooks', [])]
    loader = type('FakeLoader', (), dict(batch_size=16))()
    runner = type('FakeRunner', (), dict(model=model,
                                         train_dataloader=loader))()
    for hook in hooks:
        hook.before_train(runner)
    model.train()
    for hook in hooks:
        hook.before_train_iter(runner, 0)
    batch = random_seg_batch(batch_size=2, size=size, num_classes=num_classes)
    log = model.train_step(batch, optim)
    assert torch.isfinite(log['loss'])
    if hooks:  # PEM training on a frozen segmentor: only PEM losses
        assert all(k == 'loss' or k.startswith('pem') for k in log), log

    model.eval()
    with torch.no_grad():
        out = model.test_step(
            random_seg_batch(batch_size=1, size=size, num_classes=num_classes))
    assert out[0].seg_logits.data.shape == (num_classes, size, size)
    assert out[0].pred_sem_seg.shape == (size, size)


@pytest.mark.parametrize('path', NPE_CONFIGS, ids=_id)
def test_paper_config_schedule_checkpoint_and_hook(path):
    cfg = load(path)
    assert cfg.model.type == 'NPEEncoderDecoder'
    assert cfg.load_from.startswith('https://download.openmmlab.com/')
    assert cfg.custom_imports.imports == ['mmnpe']
    assert [h.type for h in cfg.custom_hooks
            ] == ['FrozenBackboneHook', 'TotalBatchSizeHook']
    # The paper's total batch of 16 for every PEM: 1 process x 16 here,
    # checked against the launch by the hook.
    assert cfg.train_dataloader.batch_size == 16
    assert cfg.custom_hooks[1].total_batch_size == 16
    name = osp.splitext(osp.basename(path))[0]
    scale = float(name.split(TEST_ALPHA)[1]) if TEST_ALPHA in name else 1.
    assert cfg.model.scale_factor == scale
    sched = cfg.param_scheduler[0]
    if 'stare' in path:
        assert cfg.train_cfg.max_iters == 600
        assert sched.milestones == [200, 400]
    else:
        assert cfg.train_cfg.max_iters == 2500
        assert sched.milestones == [1250]
    opt = cfg.optim_wrapper.optimizer
    if 'swin' in path:
        assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 6e-5, 0.01)
    else:
        assert (opt.type, opt.lr, opt.weight_decay) == ('SGD', 0.01, 5e-4)
    assert 'paramwise_cfg' not in cfg.optim_wrapper  # no lr_mult tricks


# The paper's rows: one PEM training per model, tested at alpha = 1 by the
# training config and at the paper's other alpha by its test-alpha twin.
PAPER_ROWS = {
    'unet_stare_pem_fcn': (0.2, ),
    'deeplabv3_ade20k_pem_aspp': (0.1, ),
    'deeplabv3_ade20k_pem_fcn': (0.1, ),
    'swin-t_upernet_ade20k_pem_uper': (0.1, ),
    'swin-t_upernet_ade20k_pem_fcn': (0.1, ),
}


def test_npe_configs_are_one_training_per_model_and_its_test_alphas():
    names = {osp.basename(p)[:-3] for p in NPE_CONFIGS}
    want = set(PAPER_ROWS) | {
        f'{base}{TEST_ALPHA}{alpha:g}'
        for base, alphas in PAPER_ROWS.items()
        for alpha in alphas
    }
    assert names == want


@pytest.mark.parametrize('base,alpha', [(b, a)
                                        for b, alphas in PAPER_ROWS.items()
                                        for a in alphas])
def test_test_alpha_config_is_its_training_config_but_scale_factor(
        base, alpha):
    """A test-alpha config trains nothing of its own: it inherits the
    training config and sets only model.scale_factor, so the training
    config's checkpoint is the one it tests."""
    path = osp.join(REPO, 'configs', 'npe', f'{base}{TEST_ALPHA}{alpha:g}.py')
    with open(path) as f:
        source = f.read()
    header = ' '.join(line[1:].strip() for line in source.splitlines()
                      if line.startswith('#'))
    assert header.startswith('No training of its own: tests the checkpoint '
                             f'of {base}.py at alpha={alpha:g}'), header
    assert f"_base_ = './{base}.py'" in source
    test_cfg = load(path).to_dict()
    train_cfg = load(osp.join(REPO, 'configs', 'npe', f'{base}.py')).to_dict()
    assert train_cfg['model']['scale_factor'] == 1.0
    assert test_cfg['model'].pop('scale_factor') == alpha
    train_cfg['model'].pop('scale_factor')
    assert test_cfg == train_cfg


def test_required_config_name_exists_and_scale_overridable():
    path = osp.join(REPO, 'configs', 'npe',
                    'deeplabv3_ade20k_pem_fcn_test-alpha0.1.py')
    cfg = load(path)
    assert cfg.model.pem_head.type == 'PEMFCNHead'
    assert cfg.model.scale_factor == 0.1
    cfg.merge_from_dict({'model.scale_factor': 0.5})  # --cfg-options
    assert cfg.model.scale_factor == 0.5


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
    rng = np.random.default_rng(0)
    for split in ('training', 'validation'):
        for i in range(2):
            img = rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)
            ann = np.zeros((80, 96), dtype=np.uint8)
            ann[:40] = 5
            ann[40:, :48] = 150
            mmcv.imwrite(
                img, osp.join(root, 'images', split,
                              f'ADE_{split}_{i:08d}.jpg'))
            mmcv.imwrite(
                ann,
                osp.join(root, 'annotations', split,
                         f'ADE_{split}_{i:08d}.png'))


@pytest.mark.parametrize('name,writer', [
    ('unet_stare_pem_fcn.py', _write_stare),
    ('deeplabv3_ade20k_pem_fcn_test-alpha0.1.py', _write_ade),
])
def test_paper_config_reads_the_real_dataset_layout(tmp_path, name, writer):
    cfg = load(osp.join(REPO, 'configs', 'npe', name))
    writer(str(tmp_path))
    for key in ('train_dataloader', 'test_dataloader'):
        ds_cfg = copy.deepcopy(cfg[key].dataset)
        inner = ds_cfg.get('dataset', ds_cfg)  # STARE trains a RepeatDataset
        inner.data_root = str(tmp_path)
        ds = DATASETS.build(ds_cfg)
        item = ds[0]
        labels = set(item['data_samples'].gt_sem_seg.data.unique().tolist())
        if 'stare' in name:
            assert labels <= {0, 1}
        else:  # reduce_zero_label: 0 -> 255, k -> k - 1
            assert labels <= {4, 149, 255}
            assert key == 'train_dataloader' or 4 in labels


ALL_CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, REPO).split(osp.sep))


def test_all_config_folders_are_covered():
    folders = {osp.relpath(p, REPO).split(osp.sep)[1] for p in ALL_CONFIGS}
    assert folders == {
        'baselines', 'cifar_lt', 'demo', 'imagenet_lt', 'inat2018', 'lvis',
        'npe', 'places_lt'
    }
    assert len(ALL_CONFIGS) == 217


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_id)
def test_config_carries_what_the_flags_of_tools_test_need(path):
    """What the host library's stock configs get from their _base_ files:
    ``--show`` / ``--show-dir`` switch on default_hooks.visualization, and
    mmseg's ``--tta`` needs tta_model and tta_pipeline (mmpretrain's
    tools/test.py, and ours, default to flip TTA; so do mmdet's)."""
    cfg = Config.fromfile(path)
    vis = cfg.default_hooks.visualization
    if cfg.default_scope == 'mmseg':
        assert vis.type == 'SegVisualizationHook'
        assert vis.get('draw', False) is False  # off until --show-dir
        assert cfg.visualizer.type == 'SegLocalVisualizer'
        assert cfg.tta_model.type == 'SegTTAModel'
        steps = [t['type'] for t in cfg.tta_pipeline]
        assert steps[0] == 'LoadImageFromFile' and 'TestTimeAug' in steps
    elif cfg.default_scope == 'mmdet':
        assert vis.type == 'DetVisualizationHook'
        assert vis.get('draw', False) is False  # off until --show-dir
        assert cfg.visualizer.type == 'DetLocalVisualizer'
        # mmdet's default flip TTA reads the test pipeline's packing step.
        steps = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
        assert steps[0] == 'LoadImageFromFile'
        assert steps[-1] == 'PackDetInputs'
    else:
        assert cfg.default_scope == 'mmpretrain'
        assert vis.type == 'VisualizationHook'
        assert vis.enable is False  # off until --show-dir
        assert cfg.visualizer.type == 'UniversalVisualizer'
        # The default flip TTA replaces the last test step.
        assert cfg.test_dataloader.dataset.pipeline[-1].type == 'PackInputs'
