"""tools/test.py flags on mmpretrain configs mean what they mean in
mmpretrain's own tools/test.py."""

import pytest
from helpers import parse_test_flags
from mmengine.config import Config

from mmnpe.cls.cli import merge_test_args


def args(**kwargs):
    return parse_test_flags('configs/x/npe_cfg.py', 'ckpt.pth', **kwargs)


def cfg():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    return Config(
        dict(
            default_scope='mmpretrain',
            model=dict(type='ImageClassifier'),
            test_dataloader=dict(
                batch_size=2, dataset=dict(type='X', pipeline=pipeline)),
            test_cfg=dict(),
            default_hooks=dict(
                visualization=dict(type='VisualizationHook', enable=False))))


def test_show_dir_enables_mmpretrains_visualization_hook():
    out = merge_test_args(cfg(), args(show_dir='paint', interval=5))
    vis = out.default_hooks.visualization
    assert (vis.enable, vis.out_dir, vis.interval, vis.show) == (True, 'paint',
                                                                 5, False)
    assert 'draw' not in vis  # mmseg's key, unknown to mmpretrain's hook
    out = merge_test_args(cfg(), args(show=True, wait_time=0.5))
    vis = out.default_hooks.visualization
    assert (vis.enable, vis.show, vis.wait_time, vis.interval) == (True, True,
                                                                   0.5, 1)


def test_work_dir_checkpoint_amp_and_dataloader_defaults():
    out = merge_test_args(cfg(), args(amp=True, no_pin_memory=True))
    assert out.work_dir == './work_dirs/npe_cfg'
    assert out.load_from == 'ckpt.pth'
    assert out.test_cfg.fp16 is True
    assert out.test_dataloader.pin_memory is False
    assert out.test_dataloader.collate_fn == dict(type='default_collate')
    assert out.test_dataloader.batch_size == 2
    # --out is not an evaluator argument for mmpretrain (it is a
    # DumpResults metric added to the built runner).
    assert 'test_evaluator' not in out


def test_cfg_options_come_last_and_override():
    out = merge_test_args(
        cfg(),
        args(
            show_dir='paint',
            cfg_options={'default_hooks.visualization.interval': 7}))
    assert out.default_hooks.visualization.interval == 7


def test_default_flip_tta_as_mmpretrain():
    out = merge_test_args(cfg(), args(tta=True))
    assert out.model.type == 'mmpretrain.AverageClsScoreTTA'
    assert out.model.module.type == 'ImageClassifier'
    last = out.test_dataloader.dataset.pipeline[-1]
    assert last.type == 'TestTimeAug'
    assert [t.prob for t in last.transforms[0]] == [1., 0.]


def test_misuse_is_refused():
    with pytest.raises(ValueError, match='--out-item needs --out FILE'):
        merge_test_args(cfg(), args(out_item='metrics'))
    no_hook = cfg()
    no_hook.default_hooks = dict()
    with pytest.raises(ValueError, match='need a VisualizationHook'):
        merge_test_args(no_hook, args(show_dir='paint'))
