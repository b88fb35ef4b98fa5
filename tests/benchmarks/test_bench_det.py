"""The detection lines of benchmarks/bench_npe.py in their fast mode (a
tiny detector, two repetitions): every line runs and reports its ratios;
no timing is asserted (the shared CPUs make one-off timings meaningless)."""
import os.path as osp
import re
import runpy

import pytest

pytest.importorskip('mmdet')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'benchmarks', 'bench_npe.py')


@pytest.fixture(scope='module')
def bench():
    module = runpy.run_path(SCRIPT, run_name='bench_npe')
    module['FAST']['enabled'] = True
    yield module
    module['FAST']['enabled'] = False


@pytest.mark.parametrize(
    'name', ['det_infer', 'det_frozen', 'mem_det_infer', 'mem_det_frozen'])
def test_detection_benchmark_lines_run(bench, name):
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        line = bench['BENCHES'][name](2)
    finally:
        torch.set_num_threads(threads)
    assert line.startswith(name) and '--fast' in line
    ratio = float(re.search(r': (\d+\.\d+) ', line).group(1))
    assert ratio > 0
    if not name.startswith('mem'):
        assert re.search(r'A/A \d+\.\d+', line)
    else:
        # Both arms' peak memory, in MiB.
        assert len(re.findall(r'\d+\.\d MiB', line)) == 2
