"""InputCheckHook's checkpoint check: a module the config drops is not an
architecture mismatch."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmnpe.engine import InputCheckHook
from mmnpe.engine.hooks import input_check_hook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs/demo/fcn_unet-tiny_synthetic-lt-64x64.py')
BS = osp.join(
    REPO, 'configs/demo/balanced-softmax_fcn_unet-tiny_synthetic-lt-64x64.py')


def _model(config):
    init_default_scope('mmseg')
    cfg = Config.fromfile(config).model
    if cfg.decode_head.loss_decode.get('class_counts'):
        cfg.decode_head.loss_decode.class_counts = [5.0, 4, 3, 2, 1, 1]
    return MODELS.build(cfg)


def _runner(model):
    return SimpleNamespace(model=model, cfg=Config(dict(load_from='ce.pth')))


def test_a_dropped_auxiliary_head_is_skipped_and_logged(monkeypatch):
    # The hook's own print_log calls (mmengine's shared logger may have been
    # reconfigured by earlier tests, so its output stream is not checked).
    logged = []
    monkeypatch.setattr(input_check_hook, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    # The Balanced Softmax fine-tuning config drops the CE model's
    # auxiliary head: its keys are not loaded, nothing else is refused.
    stock = _model(BASE).state_dict()
    assert any(k.startswith('auxiliary_head.') for k in stock)
    fine_tune = _model(BS)
    assert not hasattr(fine_tune, 'auxiliary_head')
    InputCheckHook().after_load_checkpoint(
        _runner(fine_tune), dict(state_dict=stock))
    assert any('modules the model does not have (auxiliary_head)' in m
               for m in logged), logged


def test_unknown_keys_under_a_module_the_model_has_are_refused():
    stock = _model(BASE).state_dict()
    stock['backbone.extra.weight'] = torch.zeros(3)
    with pytest.raises(
            ValueError,
            match=r'1 keys are not in the model '
            r'\(backbone\.extra\.weight\)'):
        InputCheckHook().after_load_checkpoint(
            _runner(_model(BS)), dict(state_dict=stock))
