"""InputCheckHook's checkpoint check inside mmengine's own loading: judged
after the model's load hooks, in the mode of the run (a fake Runner that
loads as ``Runner.load_checkpoint`` does: hook, then copy)."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmseg.registry import MODELS

from mmnpe.engine import InputCheckHook, checkpoint_check
from mmnpe.engine.checkpoint_check import _loss_prefixes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(REPO, 'configs/demo/fcn_unet-tiny_synthetic-lt-64x64.py')
BS = osp.join(
    REPO, 'configs/demo/balanced-softmax_fcn_unet-tiny_synthetic-lt-64x64.py')
NPE = osp.join(REPO, 'configs/demo/npe_fcn_unet-tiny_synthetic-lt-64x64.py')


def _model(config):
    init_default_scope('mmseg')
    cfg = Config.fromfile(config).model
    if cfg.decode_head.loss_decode.get('class_counts'):
        cfg.decode_head.loss_decode.class_counts = [5.0, 4, 3, 2, 1, 1]
    return MODELS.build(cfg)


def _load(model, state, training=False, resume=False):
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    runner = SimpleNamespace(
        model=model,
        cfg=Config(dict(load_from='ckpt.pth')),
        optim_wrapper=optim if training else dict(type='OptimWrapper'),
        _resume=resume)
    checkpoint = dict(state_dict=state, meta=dict())
    InputCheckHook().after_load_checkpoint(runner, checkpoint)
    _load_checkpoint_to_model(model, checkpoint)


def test_a_dropped_auxiliary_head_is_logged_not_refused(monkeypatch):
    logged = []
    monkeypatch.setattr(checkpoint_check, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    # The Balanced Softmax fine-tuning config drops the CE model's
    # auxiliary head: its keys are not loaded, nothing else is refused.
    stock = _model(BASE).state_dict()
    assert any(k.startswith('auxiliary_head.') for k in stock)
    fine_tune = _model(BS)
    assert not hasattr(fine_tune, 'auxiliary_head')
    _load(fine_tune, stock, training=True)
    assert any('the model has no such tensors in auxiliary_head' in m
               for m in logged), logged


def test_the_pem_setting_trains_from_a_stock_checkpoint():
    stock = _model(BASE).state_dict()
    npe = _model(NPE)
    npe.backbone.requires_grad_(False)  # as FrozenBackboneHook does
    _load(npe, stock, training=True)  # the PEM is missing: it trains
    assert torch.equal(
        npe.backbone.state_dict()['encoder.0.0.convs.0.conv.'
                                  'weight'],
        stock['backbone.encoder.0.0.convs.0.conv.weight'])
    # ... but testing it on that checkpoint would use a random PEM.
    with pytest.raises(ValueError, match=r'pem_heads\.0\.'):
        _load(_model(NPE), stock)
    # Resuming needs every tensor.
    with pytest.raises(ValueError, match='a resumed run continues'):
        _load(_model(NPE), stock, training=True, resume=True)


def test_losses_hold_nothing_a_prediction_needs():
    model = _model(BS)
    assert 'decode_head.loss_decode' in _loss_prefixes(model)
    state = model.state_dict()
    del state['decode_head.loss_decode.class_counts']
    _load(_model(BS), state)  # accepted when testing


def test_the_hook_can_be_switched_off():
    stock = _model(BASE).state_dict()
    model = _model(NPE)
    runner = SimpleNamespace(
        model=model,
        cfg=Config(dict(load_from='x')),
        optim_wrapper=None,
        _resume=False)
    InputCheckHook(check_checkpoint=False).after_load_checkpoint(
        runner, dict(state_dict=stock))
    _load_checkpoint_to_model(model, dict(state_dict=stock))  # no error


def test_the_pem_setting_accepts_a_checkpoint_without_auxiliary_head():
    """The frozen auxiliary head is not run when backbone and heads are
    frozen: a stock checkpoint of a config without one trains the PEM."""
    stock = {
        k: v
        for k, v in _model(BASE).state_dict().items()
        if not k.startswith('auxiliary_head.')
    }
    npe = _model(NPE)
    for name in ('backbone', 'decode_head', 'auxiliary_head'):
        getattr(npe, name).requires_grad_(False)  # FrozenBackboneHook
    _load(npe, stock, training=True)
