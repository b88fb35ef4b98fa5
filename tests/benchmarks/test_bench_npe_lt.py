"""The thousands-of-classes lines of benchmarks/bench_npe.py (lt_train,
mem_lt_train, lt_fused) in their fast mode: tiny C, batch and input, one
repetition. Nothing timed is asserted; the memory parts are exact."""
import os.path as osp
import re
import runpy

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'bench_npe.py')


@pytest.fixture(scope='module')
def bench():
    return runpy.run_path(SCRIPT, run_name='bench_npe')


def test_lt_lines_are_registered_but_not_in_the_default_run(bench):
    assert set(bench['LT_BENCHES']) == {'lt_train', 'mem_lt_train', 'lt_fused'}
    assert set(bench['LT_BENCHES']) <= set(bench['BENCHES'])
    # What the real run measures: the configs' class counts and K.
    assert bench['LT_SETTINGS']['classes'] == (1000, 8142)
    assert bench['LT_SETTINGS']['pems'] == (1, 16)


def test_lt_train_fast_mode(bench):
    fast = bench['LT_FAST']
    out = bench['bench_lt_train'](1, **fast).splitlines()
    assert len(out) == len(fast['classes']) * len(fast['pems'])
    for line, (c, k) in zip(out, [(c, k) for c in fast['classes']
                                  for k in fast['pems']]):
        assert line.startswith(f'lt_train   ResNet-50 step, C={c}, K={k} / '
                               'K=0 (batch 2, 32x32): ')
        ratio, control = map(
            float,
            re.search(r': ([\d.]+)  \(A/A ([\d.]+);', line).groups())
        assert ratio > 0 and control > 0
        pem = k * 2049 * c / 1e6
        assert f'{pem:.1f} M PEM parameters' in line


def test_mem_lt_train_parts_are_exact(bench):
    """K PEMs add exactly K x (2048 + 1) x C fp32 parameters, as many
    gradients and as many momentum values; the printed peak is their sum
    with the step's own allocations."""
    c = bench['LT_FAST']['classes'][-1]
    mem = {k: bench['lt_step_memory'](c, k, 2, 32) for k in (0, 16)}
    pem_bytes = 16 * 2049 * c * 4
    for part in ('parameters', 'momentum', 'gradients'):
        assert mem[16][part] - mem[0][part] == pem_bytes
    # ResNet-50 (25.6 M) + its C-way classifier, in fp32.
    assert mem[0]['parameters'] == 4 * (23_508_032 + 2049 * c)
    assert mem[0]['during'] > mem[0]['gradients']
    out = bench['bench_mem_lt_train'](
        1, classes=(c, ), pems=(16, ), batch=2, size=32).splitlines()
    assert len(out) == 2 and 'C=30, K=16' in out[1]
    assert bench['_mib'](mem[16]['start'] + mem[16]['during']) in out[1]


def test_lt_fused_fast_mode(bench):
    line = bench['bench_lt_fused'](1, **bench['LT_FAST'])
    assert line.startswith('lt_fused   fused NPE-LA (K=16) / plain '
                           'classifier inference, ResNet-50, C=30')
    assert 'identical argmax: True' in line
