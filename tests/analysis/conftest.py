"""Session fixtures of the analysis tests (see analysis_helpers)."""
import pytest
import torch
from analysis_helpers import (CLS_CE, CLS_NPE, nearest_mean_classifier,
                              save_checkpoint, seg_config, small_cls_config)

from mmnpe.analysis import build_model, load_config


@pytest.fixture(scope='session')
def seg_npe(tmp_path_factory, synthetic_root):
    """(config, checkpoint) of the tiny NPE segmentor whose PEM is scaled
    up (N(0, 0.5)) so that the correction changes predictions."""
    folder = tmp_path_factory.mktemp('seg_npe')
    config = seg_config(folder, synthetic_root)
    # Seeded before the build too: the segmentor's own initialisation must
    # not depend on what earlier tests drew.
    torch.manual_seed(0)
    model = build_model(load_config(config))
    for p in model.pem_heads.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return config, save_checkpoint(model, folder / 'npe.pth')


@pytest.fixture(scope='session')
def cls_npe(tmp_path_factory):
    """(config, checkpoint) of ResNet-32 + NPEClsHead (K=1) on DigitsLT:
    nearest-class-mean classifier, PEM planted to output minus the log
    class frequency (eta = log prior, centred)."""
    folder = tmp_path_factory.mktemp('cls_npe')
    config = small_cls_config(folder, CLS_NPE)
    model = build_model(load_config(config))
    torch.manual_seed(0)
    model.init_weights()
    y = nearest_mean_classifier(model, config)
    freq = torch.bincount(y, minlength=10).double()
    model.head.pems.weight.data.zero_()
    model.head.pems.bias.data.copy_(-(freq / freq.sum()).log())
    return config, save_checkpoint(model, folder / 'npe.pth')


@pytest.fixture(scope='session')
def cls_ce(tmp_path_factory):
    """(config, checkpoint) of the CE (no PEM) ResNet-32 on DigitsLT."""
    folder = tmp_path_factory.mktemp('cls_ce')
    config = small_cls_config(folder, CLS_CE)
    model = build_model(load_config(config))
    return config, save_checkpoint(model, folder / 'ce.pth')
