"""Configs and checkpoints the analysis tests share, written as files as a
user would pass them to the tools."""
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import torch
from helpers import tiny_runner_cfg
from mmseg.evaluation import IoUMetric

from mmnpe.analysis import build_train_set, load_config
from mmnpe.analysis.builder import build_dataloader

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_NPE = osp.join(REPO, 'configs/demo/npe-la-k1_resnet32_digits-lt.py')
CLS_CE = osp.join(REPO, 'configs/demo/ce_resnet32_digits-lt.py')
AREAS = ('intersect', 'union', 'pred', 'label')


def write_config(path, cfg: dict) -> str:
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    return str(path)


def save_checkpoint(model, path) -> str:
    torch.save(dict(meta={}, state_dict=model.state_dict()), str(path))
    return str(path)


def seg_config(folder, data_root, **model_kwargs) -> str:
    """The tiny NPE segmentor on the synthetic set, evaluated with
    ClassWiseIoUMetric (mIoU + mDice)."""
    cfg = tiny_runner_cfg(str(folder / 'work'), data_root, **model_kwargs)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    cfg['test_evaluator'] = dict(
        type='ClassWiseIoUMetric', iou_metrics=['mIoU', 'mDice'])
    cfg['val_evaluator'] = cfg['test_evaluator']
    return write_config(folder / 'seg_npe.py', cfg)


def small_cls_config(folder, base: str) -> str:
    """``base`` (a DigitsLT demo config) with 10 test images per class."""
    path = folder / f'small_{osp.basename(base)}'
    path.write_text(
        f'_base_ = [{base!r}]\n'
        'val_dataloader = dict(dataset=dict(num_test_per_class=10))\n'
        'test_dataloader = val_dataloader\n')
    return str(path)


def nearest_mean_classifier(model, config) -> torch.Tensor:
    """Make the (untrained) ResNet-32 a nearest-class-mean classifier on its
    random features of the training set, so that predictions depend on the
    image without a slow training run; returns the training labels."""
    cfg = load_config(config)
    loader = build_dataloader(
        cfg.test_dataloader, dataset=build_train_set(cfg))
    feats, labels = [], []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            feats.append(model.extract_feat(data['inputs'])[-1])
            labels.append(
                torch.cat([s.gt_label for s in data['data_samples']]))
    h, y = torch.cat(feats), torch.cat(labels)
    mu = torch.stack([h[y == c].mean(0) for c in range(10)])
    # -|h - mu_c|^2 / 2s up to a per-sample constant, s a typical distance.
    s = (h - mu[y]).norm(dim=1).mean()**2
    model.head.fc.weight.data.copy_(mu / s)
    model.head.fc.bias.data.copy_(-(mu * mu).sum(1) / (2 * s))
    return y


def perturbed_state(model, seed: int = 123) -> dict:
    """The model's weights with the BN statistics moved away from their
    initial values, as a trained checkpoint has them (the random decode heads
    then predict more than one class)."""
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean'):
            state[key] = value + 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith('running_var'):
            state[key] = value * (1 +
                                  0.5 * torch.rand(value.shape, generator=g))
    return state


@torch.no_grad()
def separate_evaluation(model, loader, classes) -> Tuple[dict, dict]:
    """What a test run (``tools/test.py``'s TestLoop) computes with the
    model as it is: ``test_step`` per batch, mmseg's :class:`IoUMetric` fed
    as the Evaluator feeds it. Returns the summed areas the metric computes
    its values from (recorded from its ``compute_metrics``) and the metrics
    it returns."""
    metric = IoUMetric(iou_metrics=['mIoU', 'mDice'])
    metric.dataset_meta = dict(classes=list(classes))
    for batch in loader:
        outputs = model.test_step(batch)
        metric.process(batch, [o.to_dict() for o in outputs])
    with recorded_iou_totals() as totals:
        metrics = metric.compute_metrics(metric.results)
    assert len(totals) == 1
    return dict(zip(AREAS, totals[0])), metrics


@contextmanager
def recorded_iou_totals() -> Iterator[List[tuple]]:
    """Record the summed areas :class:`IoUMetric` turns into metrics (the
    first four arguments of its ``total_area_to_metrics``)."""
    seen: List[tuple] = []
    original = IoUMetric.total_area_to_metrics

    def record(*args, **kwargs):
        seen.append(tuple(a.clone() for a in args[:4]))
        return original(*args, **kwargs)

    IoUMetric.total_area_to_metrics = staticmethod(record)
    try:
        yield seen
    finally:
        IoUMetric.total_area_to_metrics = staticmethod(original)
