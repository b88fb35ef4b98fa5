"""tools/test.py's flags on mmdet configs, as mmdet's own tools/test.py
reads them (merge_test_args); end to end in test_det_tools.py."""
import os.path as osp

import pytest
from helpers import parse_test_flags
from mmengine.config import Config

from mmnpe.det.cli import merge_test_args

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'demo',
                  'faster-rcnn_r18-tiny_fpn_synthetic-lvis.py')


def _args(**kwargs):
    return parse_test_flags(CONFIG, 'ckpt.pth', **kwargs)


def test_work_dir_checkpoint_and_cfg_options():
    cfg = merge_test_args(
        Config.fromfile(CONFIG),
        _args(cfg_options={'model.roi_head.bbox_head.num_classes': 12}))
    assert cfg.load_from == 'ckpt.pth'
    assert cfg.work_dir.endswith('faster-rcnn_r18-tiny_fpn_synthetic-lvis')
    assert cfg.launcher == 'none'


def test_show_dir_turns_on_mmdets_visualization_hook():
    cfg = merge_test_args(Config.fromfile(CONFIG), _args(show_dir='painted'))
    vis = cfg.default_hooks.visualization
    assert vis.type == 'DetVisualizationHook' and vis.draw
    assert vis.test_out_dir == 'painted'


def test_tta_uses_mmdets_default_flip_and_tta_model():
    with pytest.warns(UserWarning, match='tta_model'):
        cfg = merge_test_args(Config.fromfile(CONFIG), _args(tta=True))
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module.type == 'FasterRCNN'
    last = cfg.test_dataloader.dataset.pipeline[-1]
    assert last.type == 'TestTimeAug'
    assert [t.prob for t in last.transforms[0]] == [1., 0.]


@pytest.mark.parametrize('flag, value', [('out_item', 'metrics'),
                                         ('interval', 2), ('amp', True),
                                         ('no_pin_memory', True)])
def test_flags_of_other_libraries_are_refused(flag, value):
    with pytest.raises(ValueError, match='not a flag of mmdet'):
        merge_test_args(Config.fromfile(CONFIG), _args(**{flag: value}))


def test_out_must_be_a_pickle():
    with pytest.raises(ValueError, match=r'--out must name a \.pkl'):
        merge_test_args(Config.fromfile(CONFIG), _args(out='preds.json'))
