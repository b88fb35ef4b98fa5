"""tools/test.py flags on mmseg configs keep mmseg's meaning."""

import pytest
from helpers import parse_test_flags
from mmengine.config import Config

from mmnpe.seg.cli import merge_test_args


def args(**kwargs):
    return parse_test_flags('configs/npe/x.py', 'ckpt.pth', **kwargs)


def cfg():
    return Config(
        dict(
            default_scope='mmseg',
            model=dict(type='NPEEncoderDecoder'),
            test_evaluator=dict(type='IoUMetric'),
            visualizer=dict(type='SegLocalVisualizer'),
            default_hooks=dict(
                visualization=dict(type='SegVisualizationHook'))))


def test_out_and_show_dir_as_mmseg():
    out = merge_test_args(cfg(), args(out='preds', show_dir='paint'))
    assert out.test_evaluator.output_dir == 'preds'
    assert out.test_evaluator.keep_results is True
    assert out.default_hooks.visualization.draw is True
    assert out.visualizer.save_dir == 'paint'
    assert out.load_from == 'ckpt.pth'
    assert out.work_dir == './work_dirs/x'


@pytest.mark.parametrize('flag, value', [('out_item', 'metrics'),
                                         ('interval', 5), ('amp', True),
                                         ('no_pin_memory', True)])
def test_mmpretrain_only_flags_are_refused(flag, value):
    name = '--' + flag.replace('_', '-')
    with pytest.raises(
            ValueError, match=f"{name} is a flag of mmpretrain's tools"):
        merge_test_args(cfg(), args(**{flag: value}))
