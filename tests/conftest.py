"""Shared fixtures."""
import pytest
from helpers import random_seg_batch, tiny_segmentor_cfg

from mmnpe.seg import generate_synthetic_lt


@pytest.fixture
def seg_cfg():
    return tiny_segmentor_cfg()


@pytest.fixture
def seg_batch():
    return random_seg_batch()


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A tiny synthetic long-tailed set in mmseg's on-disk layout."""
    root = tmp_path_factory.mktemp('synthetic_lt')
    generate_synthetic_lt(str(root), num_train=4, num_val=2, size=32)
    return str(root)
