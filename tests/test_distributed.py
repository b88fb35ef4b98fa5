"""Multi-process training and testing through tools/dist_train.sh and
tools/dist_test.sh: 2 CPU processes joined by gloo (no CUDA here), DDP.

Each case trains a demo config for a few iterations and checks, from what
every rank wrote (``dist_probe.DistProbeHook``):

- DDP registered exactly the trainable parameters (the frozen ones never
  enter its gradient buckets) and runs without ``find_unused_parameters``;
- the trained weights are identical on both ranks;
- frozen weights and BN buffers are bit-identical to the checkpoint they
  came from, and what trains did move;
- tools/dist_test.sh on the result gives tools/test.py's metrics.

cRT with the class-balanced sampler is the third case once its demo
config exists; a further case is one more ``DistCase`` in ``CASES``.
"""
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import pytest
import torch
from launch_helpers import (CLS_NPE_K16, DEMO, DIST_TIMEOUT, SEG_NPE,
                            differing, metrics, run_dist_test, run_dist_train,
                            run_test, seg_data, state_dict,
                            stock_seg_checkpoint, write_config)
from mmengine.config import Config
from mmengine.registry import init_default_scope

IMPORTS = dict(imports=['mmnpe', 'dist_probe'], allow_failed_imports=False)
SEG_FROZEN = ('backbone.', 'decode_head.', 'auxiliary_head.')
CLS_CE = osp.join(DEMO, 'ce_resnet32_digits-lt.py')
CLS_CRT = osp.join(DEMO, 'crt_resnet32_digits-lt.py')


@dataclass
class DistCase:
    """One distributed training case.

    ``make(tmp_path, synthetic_root)`` writes the config and returns it with
    the checkpoint it loads (None: trained from scratch); ``checkpoint`` is
    the file the run ends with; exactly the parameters under ``trains``
    train (and move); those under ``frozen`` (parameters and buffers) must
    come out bit-identical to the loaded checkpoint.
    """
    name: str
    make: Callable[[str, str], Tuple[str, Optional[str]]]
    checkpoint: str
    # Prefixes of the parameters that train (all: '').
    trains: Tuple[str, ...] = ('', )
    frozen: Tuple[str, ...] = ()
    # BN buffers of *trained* modules differ between ranks: mmengine's DDP
    # does not broadcast buffers (broadcast_buffers=False), as in stock runs.
    buffers_equal_across_ranks: bool = True
    # test_evaluator[1] is a DumpResults whose per-sample predictions the
    # single- and multi-process tests must agree on.
    dumps_predictions: bool = False


def make_seg_pem(tmp: str, root: str) -> Tuple[str, str]:
    stock = stock_seg_checkpoint(osp.join(tmp, 'stock.pth'))
    config = write_config(
        osp.join(tmp, 'seg_pem.py'),
        SEG_NPE,
        custom_imports=IMPORTS,
        load_from=stock,
        train_cfg=dict(max_iters=3, val_interval=100),
        default_hooks=dict(
            checkpoint=dict(interval=3), logger=dict(interval=1)),
        custom_hooks=[
            dict(type='FrozenBackboneHook'),
            dict(type='DistProbeHook')
        ],
        env_cfg=dict(dist_cfg=dict(timeout=DIST_TIMEOUT)),
        **seg_data(root))
    return config, stock


def make_cls_npe_k16(tmp: str, root: str) -> Tuple[str, None]:
    config = write_config(
        osp.join(tmp, 'cls_npe_k16.py'),
        CLS_NPE_K16,
        custom_imports=IMPORTS,
        train_cfg=dict(max_epochs=1),
        # Per-sample predictions too: after one epoch the model may predict
        # one class for all, which would make equal accuracies vacuous.
        test_evaluator=[
            dict(type='LongTailAccuracy'),
            dict(type='DumpResults', out_file_path='unset.pkl')
        ],
        default_hooks=dict(checkpoint=dict(interval=1)),
        # The config's ClassCountsHook (LongTailAccuracy's training counts)
        # and the probe.
        custom_hooks=[
            dict(type='ClassCountsHook'),
            dict(type='DistProbeHook')
        ],
        env_cfg=dict(dist_cfg=dict(timeout=DIST_TIMEOUT)))
    return config, None


def make_cls_crt(tmp: str, root: str) -> Tuple[str, str]:
    """cRT stage 2 (class-balanced sampler, frozen backbone, classifier
    re-initialised) on a CE checkpoint of the demo classifier."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CLS_CE).model)
    model.init_weights()
    g = torch.Generator().manual_seed(123)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean'):
            state[key] = value + 0.1 * torch.randn(value.shape, generator=g)
    stock = osp.join(tmp, 'ce.pth')
    torch.save(dict(meta=dict(), state_dict=state), stock)
    hooks = Config.fromfile(CLS_CRT).custom_hooks
    config = write_config(
        osp.join(tmp, 'cls_crt.py'),
        CLS_CRT,
        custom_imports=IMPORTS,
        load_from=stock,
        find_unused_parameters=False,
        train_cfg=dict(max_epochs=1, val_interval=1),
        default_hooks=dict(checkpoint=dict(interval=1)),
        custom_hooks=[h.to_dict()
                      for h in hooks] + [dict(type='DistProbeHook')],
        test_evaluator=[
            dict(type='LongTailAccuracy'),
            dict(type='DumpResults', out_file_path='unset.pkl')
        ],
        env_cfg=dict(dist_cfg=dict(timeout=DIST_TIMEOUT)))
    return config, stock


CASES = [
    DistCase('seg_pem_frozen', make_seg_pem, 'iter_3.pth', ('pem_heads.', ),
             SEG_FROZEN),
    DistCase(
        'cls_npe_k16',
        make_cls_npe_k16,
        'epoch_1.pth',
        buffers_equal_across_ranks=False,
        dumps_predictions=True),
]
if osp.isfile(CLS_CRT):  # the cRT demo config (baselines issue)
    CASES.append(
        DistCase(
            'cls_crt_balanced_sampler',
            make_cls_crt,
            'epoch_1.pth',
            trains=('head.', ),
            frozen=('backbone.', ),
            dumps_predictions=True))


def _info(work: str, rank: int) -> dict:
    import json
    with open(osp.join(work, f'rank{rank}_info.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.name)
def test_dist_train_then_dist_test(case, tmp_path, synthetic_root):
    tmp = str(tmp_path)
    config, loaded = case.make(tmp, synthetic_root)
    work = osp.join(tmp, 'work')
    log = run_dist_train(config, 2, work).wait()
    # No find_unused_parameters anywhere: DDP would raise at the second
    # iteration if a registered parameter got no gradient.
    assert 'unused parameters' not in log.lower()

    infos = [_info(work, r) for r in (0, 1)]
    for info in infos:
        assert info['world_size'] == 2 and info['ddp'], info
        assert info['ddp_find_unused_parameters'] is False
        # DDP's reducer holds exactly the trainable parameters.
        assert info['ddp_num_parameter_tensors'] == len(info['trainable'])
        assert info['ddp_total_parameter_size_bytes'] == (
            4 * info['trainable_numel'])
        frozen = [
            n for n in info['trainable'] if n.startswith(tuple(case.frozen))
        ]
        assert not frozen, frozen
    if case.frozen:
        assert infos[0]['trainable_numel'] < infos[0]['all_numel']
    assert infos[0]['trainable'] and all(
        n.startswith(case.trains) for n in infos[0]['trainable'])

    finals = [
        torch.load(osp.join(work, f'rank{r}_final.pth'), weights_only=True)
        for r in (0, 1)
    ]
    start = torch.load(osp.join(work, 'rank0_start.pth'), weights_only=True)
    params = infos[0]['trainable']
    compared = None if case.buffers_equal_across_ranks else params
    assert not differing(finals[0], finals[1], compared)
    moved = set(differing(start, finals[0], params))
    assert moved == set(params), set(params) - moved
    # The checkpoint the run wrote is what rank 0 ended with.
    ckpt = osp.join(work, case.checkpoint)
    assert not differing(state_dict(ckpt), finals[0])
    if loaded is not None:
        stock = state_dict(loaded)
        frozen_keys = [k for k in finals[0] if k.startswith(case.frozen)]
        assert frozen_keys and set(frozen_keys) <= set(stock)
        assert not differing(stock, finals[0], frozen_keys)

    runs = {}
    for name, launch in (('dist_test', run_dist_test), ('test', run_test)):
        args = (config, ckpt, 2) if name == 'dist_test' else (config, ckpt)
        dump = osp.join(tmp, f'{name}.pkl')
        runs[name] = launch(
            *args, osp.join(tmp, name), '--cfg-options',
            f'test_evaluator.1.out_file_path={dump}'
            if case.dumps_predictions else 'log_level=INFO')
    for launch in runs.values():
        launch.wait()
    expected = metrics(osp.join(tmp, 'test'))
    got = metrics(osp.join(tmp, 'dist_test'))
    keys = [k for k in expected if k not in ('time', 'data_time', 'step')]
    assert keys and {
        k: got.get(k)
        for k in keys
    } == {
        k: expected[k]
        for k in keys
    }
    if case.dumps_predictions:
        single, multi = (
            _predictions(osp.join(tmp, f'{name}.pkl'))
            for name in ('test', 'dist_test'))
        # Every test sample once, same label, same scores.
        assert sorted(multi) == sorted(single) == list(range(len(single)))
        for idx, (label, score) in single.items():
            assert multi[idx][0] == label
            torch.testing.assert_close(multi[idx][1], score)


def _predictions(path: str) -> dict:
    """``sample_idx -> (pred_label, pred_score)`` of a DumpResults file."""
    import pickle
    with open(path, 'rb') as f:
        results = pickle.load(f)
    return {
        int(r['sample_idx']): (int(r['pred_label']), r['pred_score'])
        for r in results
    }
