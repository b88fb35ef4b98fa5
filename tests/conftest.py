"""Shared fixtures."""
import os

import pytest
import torch
from helpers import random_seg_batch, tiny_segmentor_cfg

from mmnpe.seg import generate_synthetic_lt


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n auto``) the workers share
    the machine's cores: each gets its share of torch threads, and so do the
    tools' subprocesses it starts, so that N workers do not oversubscribe N
    cores."""
    if 'PYTEST_XDIST_WORKER' not in os.environ:
        return
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    cores = (
        len(os.sched_getaffinity(0))
        if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)
    threads = max(1, cores // workers)
    os.environ.setdefault('OMP_NUM_THREADS', str(threads))
    torch.set_num_threads(threads)


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
