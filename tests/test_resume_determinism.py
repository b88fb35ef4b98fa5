"""Exact resume and seeded determinism through tools/train.py.

For the segmentation PEM run (iteration-based, frozen segmentor loaded from
``load_from``) and the classification NPE run (epoch-based, from scratch),
with ``randomness.deterministic=True`` and torch's default
``weights_only=True`` loading:

- ``--resume`` with an empty work dir starts from ``load_from`` (it used to
  resume from it: ``KeyError: 'epoch'``); N steps, then ``--resume`` to 2N,
  ends bit-identical to an uninterrupted 2N run;
- a second run with the same seed is bit-identical; another seed is not.
"""
import os.path as osp

import pytest
from launch_helpers import (CLS_NPE_K16, SEG_NPE, differing, run_train,
                            seg_data, state_dict, stock_seg_checkpoint,
                            write_config)

RANDOMNESS = dict(seed=0, deterministic=True)


def seg_config(tmp: str, root: str) -> str:
    stock = stock_seg_checkpoint(osp.join(tmp, 'stock.pth'))
    return write_config(
        osp.join(tmp, 'seg.py'),
        SEG_NPE,
        load_from=stock,
        randomness=RANDOMNESS,
        train_cfg=dict(val_interval=100),
        default_hooks=dict(checkpoint=dict(interval=2)),
        **seg_data(root))


def cls_config(tmp: str, root: str) -> str:
    return write_config(
        osp.join(tmp, 'cls.py'),
        CLS_NPE_K16,
        randomness=RANDOMNESS,
        train_dataloader=dict(batch_size=64),
        default_hooks=dict(checkpoint=dict(interval=1)))


# name: (config writer, the loop-length key, N, checkpoint name pattern,
#        what the resumed run logs: mmengine, then RandomStateHook, which
#        restores torch's generator for iteration-based loops (mmengine
#        replays the data loader) and all of them for epoch-based ones)
RUNS = {
    'seg_pem': (seg_config, 'train_cfg.max_iters', 2, 'iter_{}.pth',
                ('resumed epoch: 0, iter: 2',
                 'RandomStateHook: restored the torch random states')),
    'cls_npe': (cls_config, 'train_cfg.max_epochs', 1, 'epoch_{}.pth',
                ('resumed epoch: 1, iter: ', 'RandomStateHook: restored the '
                 'Python, numpy and torch random states')),
}


@pytest.mark.parametrize('name', sorted(RUNS))
def test_resume_is_exact_and_seeds_decide(name, tmp_path, synthetic_root):
    make, length, n, ckpt, resumed = RUNS[name]
    tmp = str(tmp_path)
    config = make(tmp, synthetic_root)

    def work(run):
        return osp.join(tmp, run)

    def final(run):
        return state_dict(osp.join(work(run), ckpt.format(2 * n)))

    # Independent runs: the first half of the resumed run, an uninterrupted
    # run, the same again, and another seed.
    first = run_train(config, work('resumed'), '--resume', '--cfg-options',
                      f'{length}={n}')
    runs = {
        run:
        run_train(config, work(run), '--cfg-options', f'{length}={2 * n}',
                  f'randomness.seed={seed}')
        for run, seed in (('whole', 0), ('again', 0), ('seed1', 1))
    }
    log = first.wait()
    if name == 'seg_pem':
        assert 'no checkpoint in' in log
        assert 'fresh start from load_from' in log
    assert osp.isfile(osp.join(work('resumed'), ckpt.format(n)))
    assert not osp.isfile(osp.join(work('resumed'), ckpt.format(2 * n)))
    log = run_train(config, work('resumed'), '--resume', '--cfg-options',
                    f'{length}={2 * n}').wait()
    assert all(line in log for line in resumed), log[-3000:]
    for launch in runs.values():
        launch.wait()

    whole = final('whole')
    assert not differing(final('resumed'), whole)
    assert not differing(final('again'), whole)
    changed = differing(final('seed1'), whole)
    assert changed, 'another seed gave bit-identical weights'
    if name == 'seg_pem':
        # Only the PEM depends on the seed: the rest is the stock model.
        assert all(k.startswith('pem_heads.') for k in changed), changed
