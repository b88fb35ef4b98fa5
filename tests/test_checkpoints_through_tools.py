"""Which checkpoints tools/train.py and tools/test.py accept, as a user runs
them (their ``main(argv)``, from a fresh interpreter's state): every
checkpoint mmpretrain's / mmseg's own tools accept for the same config,
refusing only what would load silently wrong. The check runs after the
model's own load hooks, so count buffers that take their shape when loaded,
and ViT position tables resized by the backbone, are not "of another
shape"."""
import os.path as osp
import re
import shutil

import pytest
import torch
from launch_helpers import DEMO, run_test, run_train, write_config
from mmengine.config import Config
from mmengine.registry import init_default_scope

# One epoch of DigitsLT (a dozen iterations), validated and saved.
SHORT = [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1',
    'val_dataloader.dataset.num_test_per_class=5'
]
TEST_SMALL = ['test_dataloader.dataset.num_test_per_class=5']


def _demo(name):
    return osp.join(DEMO, name)


def _save_model(config, path, **model_options):
    """A checkpoint of ``config``'s model with its initial weights, as a
    Runner writes it."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model_options.items()})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def count_runs(tmp_path_factory):
    """One epoch of each count-based loss, trained by tools/train.py: the
    LA loss and Balanced Softmax from scratch, IWB as stage 2 on a CE
    checkpoint. Their losses hold class counts in a buffer that is empty
    until ClassCountsHook fills it."""
    tmp = tmp_path_factory.mktemp('count_runs')
    ce = _save_model(_demo('ce_resnet32_digits-lt.py'), str(tmp / 'ce.pth'))
    runs = {
        'la-loss': ('la-loss_resnet32_digits-lt.py', []),
        'balanced-softmax': ('balanced-softmax_resnet32_digits-lt.py', []),
        'iwb': ('iwb_resnet32_digits-lt.py', [f'load_from={ce}']),
    }
    launches = {
        name:
        run_train(
            _demo(config), str(tmp / name), '--cfg-options', *SHORT, *extra)
        for name, (config, extra) in runs.items()
    }
    for launch in launches.values():
        launch.wait()
    return {
        name: (_demo(config), str(tmp / name), extra)
        for name, (config, extra) in runs.items()
    }


@pytest.mark.parametrize('name', ['la-loss', 'balanced-softmax', 'iwb'])
def test_count_loss_checkpoints_test_and_resume(count_runs, name, tmp_path):
    config, work, extra = count_runs[name]
    ckpt = osp.join(work, 'epoch_1.pth')
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    counts = [k for k in saved['state_dict'] if k.endswith('class_counts')]
    assert counts and all(saved['state_dict'][k].numel() == 10 for k in counts)
    log = run_test(config, ckpt, str(tmp_path / 'test'), '--cfg-options',
                   *TEST_SMALL).wait()
    assert 'lt/top1' in log
    # --resume continues the run (the model's count buffers are empty until
    # the checkpoint's are loaded into them).
    resumed = osp.join(str(tmp_path), 'resumed')
    shutil.copytree(work, resumed)
    with open(osp.join(resumed, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(resumed, 'epoch_1.pth'))
    log = run_train(config, resumed, '--resume', '--cfg-options', *SHORT,
                    'train_cfg.max_epochs=2', *extra).wait()
    assert re.search(r'resumed epoch: 1, iter: \d+', log), log[-3000:]
    assert osp.isfile(osp.join(resumed, 'epoch_2.pth'))


def test_count_checkpoints_through_configs_without_counts(
        count_runs, tmp_path):
    """A Balanced-Softmax checkpoint tested through the CE config (whose
    loss has no count buffer), and an LA-loss one as cRT's stage 1."""
    config, work, _ = count_runs['balanced-softmax']
    ckpt = osp.join(work, 'epoch_1.pth')
    log = run_test(
        _demo('ce_resnet32_digits-lt.py'), ckpt, str(tmp_path / 'ce_test'),
        '--cfg-options', *TEST_SMALL).wait()
    assert 'lt/top1' in log
    assert 'not loaded (the model has no such tensors in head.loss_module)' \
        in log
    _, la_work, _ = count_runs['la-loss']
    crt = run_train(
        _demo('crt_resnet32_digits-lt.py'), str(tmp_path / 'crt'),
        '--cfg-options', *SHORT,
        f'load_from={osp.join(la_work, "epoch_1.pth")}').wait()
    assert osp.isfile(str(tmp_path / 'crt' / 'epoch_1.pth')), crt[-2000:]


def test_what_would_load_silently_wrong_is_refused(count_runs, tmp_path):
    _, work, _ = count_runs['la-loss']
    ckpt = osp.join(work, 'epoch_1.pth')
    # An NPE config on a checkpoint without PEMs: its prediction would use
    # the PEMs' random initialisation.
    launch = run_test(
        _demo('npe-la-k1_resnet32_digits-lt.py'), ckpt, str(tmp_path / 'npe'),
        '--cfg-options', *TEST_SMALL)
    log = launch.wait(check=False)
    assert launch.returncode != 0
    assert 'tensors the run uses as they are did not load: head.pems' in log
    assert 'would predict from their random initialisation' in log
    # cRT freezes the backbone: a stage-1 checkpoint that lacks part of it
    # would leave frozen random weights for the whole run.
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    state['state_dict'] = {
        k: v
        for k, v in state['state_dict'].items()
        if not k.startswith('backbone.stages.2.')
    }
    partial = str(tmp_path / 'partial.pth')
    torch.save(state, partial)
    launch = run_train(
        _demo('crt_resnet32_digits-lt.py'), str(tmp_path / 'crt'),
        '--cfg-options', *SHORT, f'load_from={partial}')
    log = launch.wait(check=False)
    assert launch.returncode != 0
    assert 'backbone.stages.2.' in log and 'they are frozen' in log


def test_fine_tune_to_another_num_classes_is_accepted(tmp_path):
    """mmengine warns and skips a head of another shape when load_from
    initialises training; so do our tools (the new head is trained)."""
    config = _demo('ce_resnet32_digits-lt.py')
    five = _save_model(
        config, str(tmp_path / 'five.pth'), head=dict(num_classes=5))
    log = run_train(config, str(tmp_path / 'fine_tune'), '--cfg-options',
                    *SHORT, f'load_from={five}').wait()
    assert 'tensors of another shape keep their initialisation' in log
    assert 'head.fc.weight (checkpoint torch.Size([5, 64])' in log
    assert osp.isfile(str(tmp_path / 'fine_tune' / 'epoch_1.pth'))


VIT = dict(
    type='VisionTransformer',
    arch=dict(
        embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
    patch_size=4,
    drop_rate=0.)


def test_vit_position_table_resized_by_its_own_load_hook(tmp_path):
    """A ViT checkpoint at 8x8 fine-tuned and tested at 16x16 (as 224 ->
    384): the backbone's load hook resizes ``pos_embed``, so the shapes in
    the file differ from the model's and the checkpoint is still right."""
    base = _demo('ce_resnet32_digits-lt.py')
    resize = dict(type='Resize', scale=16)
    config = write_config(
        str(tmp_path / 'vit16.py'),
        base,
        model=dict(
            backbone=dict(_delete_=True, img_size=16, **VIT),
            neck=None,
            head=dict(
                _delete_=True,
                type='VisionTransformerClsHead',
                num_classes=10,
                in_channels=32)),
        train_dataloader=dict(
            dataset=dict(pipeline=[resize, dict(type='PackInputs')])),
        val_dataloader=dict(
            dataset=dict(pipeline=[resize, dict(type='PackInputs')])),
        test_dataloader=dict(
            dataset=dict(pipeline=[resize, dict(type='PackInputs')])))
    small = _save_model(
        config, str(tmp_path / 'vit8.pth'), backbone=dict(img_size=8))
    pos = torch.load(
        small, weights_only=True)['state_dict']['backbone.pos_embed']
    assert pos.shape == (1, 1 + 2 * 2, 32)  # 2 x 2 patches of 4 at 8x8
    run_train(config, str(tmp_path / 'ft'), '--cfg-options', *SHORT,
              f'load_from={small}').wait()
    log = run_test(config, small, str(tmp_path / 'test'), '--cfg-options',
                   *TEST_SMALL).wait()
    assert 'lt/top1' in log
    assert 'did not load' not in log
