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


#: The tiny LVIS-format set of the detection tests: 6 categories, 24
#: training images of 64 x 64 (the most frequent category in 20, the rarest
#: in 2: f / c / r tags all present), 2 validation images per category.
TINY_LVIS = dict(
    num_train=24,
    val_per_class=2,
    size=64,
    num_classes=6,
    n_max=20,
    imbalance=10.0)


@pytest.fixture(scope='session')
def lvis_root(tmp_path_factory):
    from mmnpe.det import generate_synthetic_lvis
    root = tmp_path_factory.mktemp('synthetic_lvis')
    info = generate_synthetic_lvis(str(root), **TINY_LVIS)
    return str(root), info
