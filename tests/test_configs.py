"""Every config under configs/ builds, trains one iteration and predicts on a
tiny random input on CPU; the paper configs keep their schedules and
stock checkpoints; their data pipelines read the real on-disk layouts."""
import copy
import glob
import os.path as osp
import re

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
# <base>.py trains a PEM and tests it at alpha = 1; <base>_s<a>.py trains the
# same PEM and validates / tests it at alpha = a.
ALPHA_SUFFIX = '_s'
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
    alpha = re.search(ALPHA_SUFFIX + r'(\d+(?:\.\d+)?)$', name)
    scale = float(alpha.group(1)) if alpha else 1.
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


# The paper's rows: one PEM per model, trained and tested at alpha = 1 by
# <base>.py and at the paper's other alpha by <base>_s<alpha>.py.
PAPER_ROWS = {
    'unet_stare_pem_fcn': (0.2, ),
    'deeplabv3_ade20k_pem_aspp': (0.1, ),
    'deeplabv3_ade20k_pem_fcn': (0.1, ),
    'swin-t_upernet_ade20k_pem_uper': (0.1, ),
    'swin-t_upernet_ade20k_pem_fcn': (0.1, ),
}


def test_npe_configs_are_the_paper_rows():
    names = {osp.basename(p)[:-3] for p in NPE_CONFIGS}
    want = set(PAPER_ROWS) | {
        f'{base}{ALPHA_SUFFIX}{alpha:g}'
        for base, alphas in PAPER_ROWS.items()
        for alpha in alphas
    }
    assert names == want


@pytest.mark.parametrize('base,alpha', [(b, a)
                                        for b, alphas in PAPER_ROWS.items()
                                        for a in alphas])
def test_alpha_config_is_its_base_config_but_scale_factor(base, alpha):
    """<base>_s<alpha>.py trains the PEM of <base>.py (it inherits every
    key but model.scale_factor, which acts only at inference), validates and
    tests it at alpha, and its comments say so and how to test at another
    alpha."""
    name = f'{base}{ALPHA_SUFFIX}{alpha:g}'
    path = osp.join(REPO, 'configs', 'npe', f'{name}.py')
    with open(path) as f:
        source = f.read()
    header = ' '.join(line[1:].strip() for line in source.splitlines()
                      if line.startswith('#'))
    assert header.startswith(f'NPE-LA at alpha = {alpha:g} '), header
    for said in (f'Trains the PEM on the frozen stock model exactly as '
                 f'{base}.py does, and validates and tests it at alpha = '
                 f'{alpha:g}', f'python tools/train.py configs/npe/{name}.py',
                 'One PEM serves every alpha',
                 '--cfg-options model.scale_factor='):
        assert said in header, (said, header)
    assert f"_base_ = './{base}.py'" in source
    test_cfg = load(path).to_dict()
    train_cfg = load(osp.join(REPO, 'configs', 'npe', f'{base}.py')).to_dict()
    assert train_cfg['model']['scale_factor'] == 1.0
    assert test_cfg['model'].pop('scale_factor') == alpha
    train_cfg['model'].pop('scale_factor')
    assert test_cfg == train_cfg


def test_required_config_name_exists_and_scale_overridable():
    path = osp.join(REPO, 'configs', 'npe', 'deeplabv3_ade20k_pem_fcn_s0.1.py')
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
    ('deeplabv3_ade20k_pem_fcn_s0.1.py', _write_ade),
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


MISSION = osp.join('configs', 'npe', 'deeplabv3_ade20k_pem_fcn_s0.1.py')


def _stock_checkpoint(config, path):
    """What the stock checkpoint an NPE config loads holds: every weight of
    the segmentor but the PEM's (here at their initial values)."""
    cfg = load(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith('pem_heads.')
    }
    torch.save(dict(meta=dict(), state_dict=state), path)
    return state


def test_mission_command_trains_the_pem_and_validates_at_its_alpha(tmp_path):
    """``python tools/train.py configs/npe/deeplabv3_ade20k_pem_fcn_s0.1.py``
    as a user runs it, for one iteration: the paper's batch of 16 on one
    process, the stock checkpoint from ``load_from``, ADE20K in its real
    layout (tiny images; crop and test scale shrunk to fit a CPU); only the
    PEM trains, and validation runs at alpha = 0.1."""
    from launch_helpers import run_train
    root = str(tmp_path / 'ade')
    _write_ade(root)
    stock = _stock_checkpoint(
        osp.join(REPO, MISSION), str(tmp_path / 'stock.pth'))
    work = str(tmp_path / 'work')
    loaders = [
        f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
        for key in ('num_workers=0', 'persistent_workers=False',
                    f'dataset.data_root={root}')
    ]
    log = run_train(
        MISSION,
        work,
        '--cfg-options',
        f'load_from={tmp_path / "stock.pth"}',
        *loaders,
        'train_cfg.max_iters=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
        'model.data_preprocessor.size=(64,64)',
        'train_dataloader.dataset.pipeline.2.scale=(128,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'val_dataloader.dataset.pipeline.1.scale=(96,64)',
        timeout=420).wait()
    assert re.search(r'Iter\(val\) \[2/2\].*mIoU', log), log[-3000:]
    dumped = osp.join(work, 'deeplabv3_ade20k_pem_fcn_s0.1.py')
    assert Config.fromfile(dumped).model.scale_factor == 0.1
    assert Config.fromfile(dumped).train_dataloader.batch_size == 16
    trained = torch.load(
        osp.join(work, 'iter_1.pth'), map_location='cpu',
        weights_only=True)['state_dict']
    pem = [k for k in trained if k.startswith('pem_heads.')]
    assert pem, sorted(trained)[:5]
    # The stock weights stayed as loaded; the one loss was the PEM's.
    assert all(torch.equal(trained[k], v) for k, v in stock.items())
    step = re.search(r'Iter\(train\) \[1/1\].*', log).group(0)
    assert 'pem.loss_npe' in step and 'decode' not in step, step


# configs/deploy holds MMDeploy's deploy configs, not model configs (the
# deploy tests use them).
ALL_CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, REPO).split(osp.sep)
    and osp.relpath(p, REPO).split(osp.sep)[1] != 'deploy')


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


IWB_CONFIGS = sorted(
    p for p in ALL_CONFIGS if osp.basename(p).startswith('iwb_'))
# The IWB pages say: re-initialised at CIFAR and demo scale, the loaded CE
# classifier fine-tuned at large scale (as the IWB paper does).
IWB_FINE_TUNED = ('imagenet_lt', 'inat2018', 'places_lt')


@pytest.mark.parametrize('path', IWB_CONFIGS, ids=_id)
def test_iwb_config_reinitialises_or_fine_tunes_as_the_docs_say(path):
    cfg = Config.fromfile(path)
    stage_two = [h for h in cfg.custom_hooks if h.type == 'StageTwoHook']
    assert len(stage_two) == 1
    folder = osp.relpath(path, osp.join(REPO, 'configs')).split(osp.sep)[0]
    want = [] if folder in IWB_FINE_TUNED else ['head']
    assert list(stage_two[0].reinit_modules) == want


def test_iwb_pages_name_both_kinds():
    folders = {
        osp.relpath(p, osp.join(REPO, 'configs')).split(osp.sep)[0]
        for p in IWB_CONFIGS
    }
    assert folders == {'cifar_lt', 'demo', *IWB_FINE_TUNED}
    for page in ('docs/advanced_guides/baselines.md', 'docs/method.md'):
        with open(osp.join(REPO, page)) as f:
            text = ' '.join(f.read().replace('**', '').split())
        assert ('ImageNet-LT, iNaturalist 2018 and Places-LT IWB configs'
                in text), page
        assert 'CIFAR-LT and demo IWB configs re-initialise' in text, page
