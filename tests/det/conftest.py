import pytest

pytest.importorskip('mmdet', reason='the detection adapter needs mmdet')

import torch  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


@pytest.fixture(autouse=True)
def _det_scope_one_thread():
    """Build children in the mmdet scope; one thread per test process (the
    tiny detectors' convolutions are far slower with two threads on the
    shared 2-core machines)."""
    init_default_scope('mmdet')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
