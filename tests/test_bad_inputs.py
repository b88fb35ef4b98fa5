"""Every bad input mmnpe validates, in one table.

Each case builds the bad input the way a user would meet it (a config, an
argument, a file, a tool's flag) and asserts the exception type and that
the message names the culprit. Cases tested in depth elsewhere are repeated
here so that this file is the complete list; the table of
docs/advanced_guides/validation.md is checked against it
(``test_validation_page_lists_every_case``).
"""
import os
import os.path as osp
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Type

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import (random_seg_batch, tiny_runner_cfg, tiny_segmentor_cfg,
                     write_fake_cifar)
from launch_helpers import (REPO, run_test, run_train, stock_seg_checkpoint,
                            write_config)
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, DefaultScope, init_default_scope
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import TRANSFORMS

from mmnpe.cls import CIFAR10LT, DigitsLT, LongTailAccuracy
from mmnpe.engine import (FrozenBackboneHook, InputCheckHook,
                          UnknownComponentError, UnsafeCheckpointError,
                          build_runner, check_load_from, error_hints,
                          resolve_resume)
from mmnpe.functional import (check_scale_factor, check_sign, fuse_npe_linear,
                              npe_estimate, npe_logit_adjust,
                              one_way_logistic_loss)
from mmnpe.seg import generate_synthetic_lt


@dataclass
class Case:
    """``trigger(ctx)`` must raise ``exc`` whose message matches ``match``
    (a regex, searched)."""
    id: str
    what: str
    trigger: Callable[[Any], Any]
    exc: Type[BaseException]
    match: str


class Ctx:
    """What a case may need: a fresh folder and the synthetic data."""

    def __init__(self, tmp_path, synthetic_root):
        self.tmp = str(tmp_path)
        self.synthetic_root = synthetic_root


# -- builders
def _seg(**kwargs):
    return SEG_MODELS.build(tiny_segmentor_cfg(**kwargs))


def _pem(**kwargs):
    cfg = dict(type='PEMFCNHead', in_channels=8, in_index=2, num_classes=4)
    cfg.update(kwargs)
    return SEG_MODELS.build(cfg)


def _cls_head(**kwargs):
    from mmpretrain.registry import MODELS
    cfg = dict(type='NPEClsHead', num_classes=10, in_channels=8)
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def _train(ctx, mutate=None, **cfg_keys):
    """Train the tiny segmentor as tools/train.py does (build_runner: our
    default hooks; error_hints: readable errors)."""
    cfg = tiny_runner_cfg(
        osp.join(ctx.tmp, 'work'), ctx.synthetic_root, max_iters=2)
    cfg.update(cfg_keys)
    if mutate is not None:
        mutate(cfg)
    cfg = Config(cfg)
    with error_hints(cfg.get('load_from')):
        runner = build_runner(cfg)
        runner.train()
    return runner


def _frozen(*modules):
    return dict(type='FrozenBackboneHook', modules=list(modules))


class _FakeRunner:

    def __init__(self, model):
        self.model = model


# -- new checks of the run
def unknown_component(ctx):

    def typo(cfg):
        cfg['model']['pem_head']['type'] = 'PEMFCNHaed'

    _train(ctx, typo)


def unknown_transform(ctx):

    def typo(cfg):
        cfg['train_dataloader']['dataset']['pipeline'][1]['type'] = (
            'LoadAnnotation')

    _train(ctx, typo)


def pem_classes_differ_from_dataset(ctx):

    def five(cfg):
        model = cfg['model']
        for head in ('decode_head', 'auxiliary_head', 'pem_head'):
            model[head]['num_classes'] = 5

    _train(ctx, five)


def annotation_size_differs(ctx):
    root = osp.join(ctx.tmp, 'data')
    shutil.copytree(ctx.synthetic_root, root)
    ann_dir = osp.join(root, 'ann_dir', 'train')
    first = sorted(os.listdir(ann_dir))[0]
    ann = mmcv.imread(osp.join(ann_dir, first), 'unchanged')
    mmcv.imwrite(ann[:16], osp.join(ann_dir, first))

    def unshuffled(cfg):
        cfg['train_dataloader']['sampler']['shuffle'] = False
        cfg['train_dataloader']['dataset']['data_root'] = root

    _train(ctx, unshuffled)


@TRANSFORMS.register_module(force=True)
class _PoisonPixel:
    """Test transform: a NaN in one pixel of the images named ``name``."""

    def __init__(self, name):
        self.name = name

    def __call__(self, results):
        if osp.basename(results['img_path']) == self.name:
            results['img'][1, 2, 0] = np.nan
        return results


class _Snapshot(Hook):
    priority = 'LOWEST'

    def before_train(self, runner):
        self.state = {
            k: v.clone()
            for k, v in runner.model.state_dict().items()
        }


def _poison(cfg, name):
    """Train on float images, one pixel of image ``name`` NaN."""
    loader = cfg['train_dataloader']
    loader['sampler']['shuffle'] = False
    loader['dataset']['pipeline'] = [
        dict(type='LoadImageFromFile', to_float32=True),
        dict(type='LoadAnnotations'),
        dict(type='_PoisonPixel', name=name),
        dict(type='PackSegInputs')
    ]


def _train_image(ctx, index):
    return sorted(
        os.listdir(osp.join(ctx.synthetic_root, 'img_dir', 'train')))[index]


def nan_in_batch(ctx):
    _train(ctx, lambda cfg: _poison(cfg, _train_image(ctx, 1)))


def nan_in_batch_weights_untouched(ctx):
    """As ``nan_in_batch``; after the error no weight has moved or is NaN.
    """
    cfg = tiny_runner_cfg(
        osp.join(ctx.tmp, 'work'), ctx.synthetic_root, max_iters=2)
    _poison(cfg, _train_image(ctx, 0))
    runner = build_runner(Config(cfg))
    snapshot = _Snapshot()
    runner.register_hook(snapshot)
    try:
        runner.train()
    finally:
        after = runner.model.state_dict()
        assert all(
            torch.isfinite(v).all() for v in after.values()
            if v.is_floating_point())
        assert all(torch.equal(after[k], v) for k, v in snapshot.state.items())


def load_from_missing(ctx):
    _train(ctx, load_from=osp.join(ctx.tmp, 'no_such_checkpoint.pth'))


def load_from_other_architecture(ctx):
    # The PEM setting: backbone and heads frozen, so they must come from
    # load_from; this one is the demo's (wider) UNet.
    other = stock_seg_checkpoint(osp.join(ctx.tmp, 'demo_unet.pth'))
    _train(
        ctx, load_from=other, custom_hooks=[dict(type='FrozenBackboneHook')])


class _WritesMarker:
    """Unpickling this would run ``touch MARKER`` (os.system)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def unsafe_checkpoint(ctx):
    marker = osp.join(ctx.tmp, 'executed')
    evil = osp.join(ctx.tmp, 'evil.pth')
    model = _seg(num_classes=6)
    torch.save(
        dict(state_dict=model.state_dict(), meta=_WritesMarker(marker)), evil)
    try:
        _train(ctx, load_from=evil)
    finally:
        assert not osp.exists(marker), 'the pickled object was executed'


def resume_path_missing(ctx):
    cfg = Config(dict(work_dir=ctx.tmp, load_from=None))
    resolve_resume(cfg, osp.join(ctx.tmp, 'iter_9.pth'))


def cifar_lt_empty_class(ctx):
    root = write_fake_cifar(osp.join(ctx.tmp, 'cifar'), train_per_class=30)
    CIFAR10LT(data_root=root, imbalance_ratio=100, verify_md5=False)


# -- tools (tools/train.py and tools/test.py, each case run once)
@pytest.fixture(scope='module')
def tool_outputs(tmp_path_factory, synthetic_root):
    """Run every tool case; ``{id: (output, returncode)}``."""
    tmp = str(tmp_path_factory.mktemp('tools'))
    cfg = tiny_runner_cfg(osp.join(tmp, 'work'), synthetic_root, max_iters=1)
    cfg['custom_imports'] = dict(imports=['mmnpe'], allow_failed_imports=False)
    base = osp.join(tmp, 'base.py')
    with open(base, 'w') as f:
        f.writelines(f'{k} = {v!r}\n' for k, v in cfg.items())
    pipeline = cfg['train_dataloader']['dataset']['pipeline']
    typo = [dict(p) for p in pipeline]
    typo[1]['type'] = 'LoadAnnotation'
    configs = dict(
        typo=write_config(
            osp.join(tmp, 'typo.py'),
            base,
            train_dataloader=dict(dataset=dict(pipeline=typo))),
        apex=write_config(
            osp.join(tmp, 'apex.py'),
            base,
            optim_wrapper=dict(type='ApexOptimWrapper')))
    w = {i: osp.join(tmp, f'w{i}') for i in range(1, 5)}
    launches = dict(
        tool_unknown_transform=run_train(configs['typo'], w[1]),
        tool_amp_other_wrapper=run_train(configs['apex'], w[2], '--amp'),
        tool_tta_without_config=run_test(base, osp.join(tmp, 'none.pth'), w[3],
                                         '--tta'),
        tool_checkpoint_missing=run_test(base, osp.join(tmp, 'no_such.pth'),
                                         w[4]),
    )
    return {
        name: (launch.wait(check=False), launch.returncode)
        for name, launch in launches.items()
    }


def _tool(name):

    def trigger(ctx):
        out, code = ctx.tool_outputs[name]
        assert code != 0, out[-2000:]
        # The tool's last line: "<module>.<Type>: <message>".
        last = [
            line for line in out.strip().splitlines()
            if re.match(r'^[\w.]+(Error|Exception): ', line)
        ][-1]
        kind, message = last.split(': ', 1)
        raise _TOOL_ERRORS[kind.split('.')[-1]](message)

    return trigger


_TOOL_ERRORS = dict(
    ValueError=ValueError,
    FileNotFoundError=FileNotFoundError,
    UnknownComponentError=UnknownComponentError)

CASES = [
    # mmnpe.functional
    Case('scale_factor_negative', 'scale factor (alpha) < 0',
         lambda c: check_scale_factor(-1), ValueError,
         r'scale_factor must be a finite number >= 0, got -1'),
    Case('scale_factor_nan', 'scale factor NaN/inf',
         lambda c: check_scale_factor(float('nan')), ValueError,
         r'scale_factor.*got nan'),
    Case('owl_sign', 'OWL sign other than -1/+1', lambda c: check_sign(0),
         ValueError, r'sign must be -1 or \+1, got 0'),
    Case('npe_estimate_empty', 'NPE estimate of no PEM output',
         lambda c: npe_estimate([], -1), ValueError, r'pem_outputs'),
    Case('npe_estimate_signs', 'one sign per PEM output',
         lambda c: npe_estimate([torch.zeros(2, 3)] * 2, [1]), ValueError,
         r'signs must have one entry per PEM output \(2\), got 1'),
    Case('npe_estimate_shapes', 'PEM outputs of different shapes',
         lambda c: npe_estimate([torch.zeros(2, 3),
                                 torch.zeros(2, 4)], -1), ValueError,
         r'same shape.*\(2, 3\).*\(2, 4\)'),
    Case('logit_adjust_shapes', 'logits and estimate of different shapes',
         lambda c: npe_logit_adjust(torch.zeros(2, 3), torch.zeros(2, 4), 1),
         ValueError, r'logits and eta.*\(2, 3\).*\(2, 4\)'),
    Case('owl_soft_target', 'soft (float) targets for the OWL loss',
         lambda c: one_way_logistic_loss(torch.zeros(2, 3), torch.zeros(2)),
         TypeError, r'target must hold integer class labels.*float32'),
    Case(
        'owl_shapes', 'OWL prediction/target shapes',
        lambda c: one_way_logistic_loss(
            torch.zeros(2, 3), torch.zeros(3, dtype=torch.long)), ValueError,
        r'pred must be.*\(2, 3\).*\(3,\)'),
    Case(
        'owl_label_range', 'label outside [0, C) and not ignored',
        lambda c: one_way_logistic_loss(
            torch.zeros(2, 3), torch.tensor([0, 7])), ValueError,
        r'label 7.*num_classes=3'),
    Case(
        'fusion_shapes', 'PEM weights that do not fit the classifier',
        lambda c: fuse_npe_linear(
            torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, 3, 5),
            torch.zeros(2, 3)), ValueError, r'pem_weight \(K, C, D\)'),
    # mmnpe.seg
    Case('pem_norm_cfg', 'a PEM with normalisation',
         lambda c: _pem(norm_cfg=dict(type='BN')), ValueError,
         r'norm_cfg must be None'),
    Case('pem_num_classes', 'a PEM with < 2 classes',
         lambda c: _pem(num_classes=1), ValueError,
         r'num_classes must be an int > 1.*got 1'),
    Case('pem_out_channels', 'PEM out_channels != num_classes',
         lambda c: _pem(out_channels=1), ValueError,
         r'out_channels must equal num_classes \(4\).*got 1'),
    Case('pem_init_std', 'PEM init_std <= 0', lambda c: _pem(init_std=0),
         ValueError, r'init_std must be > 0, got 0'),
    Case('pem_loss_without_owl', 'a PEM trained without the OWL loss',
         lambda c: _pem(loss_decode=dict(type='CrossEntropyLoss')), ValueError,
         r'OneWayLogisticLoss.*CrossEntropyLoss'),
    Case(
        'owl_reduction', 'OWL loss reduction', lambda c: SEG_MODELS.build(
            dict(type='OneWayLogisticLoss', reduction='avg')), ValueError,
        r"reduction must be one of .*got 'avg'"),
    Case(
        'owl_loss_name', "OWL loss name without 'loss_'",
        lambda c: SEG_MODELS.build(
            dict(type='OneWayLogisticLoss', loss_name='npe')), ValueError,
        r"loss_name must start with 'loss_'.*got 'npe'"),
    Case(
        'owl_reduction_override', 'OWL reduction_override',
        lambda c: SEG_MODELS.build(dict(type='OneWayLogisticLoss'))
        (torch.zeros(2, 3),
         torch.zeros(2, dtype=torch.long),
         reduction_override='avg'), ValueError,
        r"reduction_override must be one of.*got 'avg'"),
    Case(
        'segmentor_sigmoid_head', 'NPE on a sigmoid (out_channels=1) head',
        lambda c: _seg(
            num_classes=2,
            decode_head=dict(
                tiny_segmentor_cfg(num_classes=2).decode_head, out_channels=1),
            pem_head=dict(
                type='PEMFCNHead', in_channels=8, in_index=2, num_classes=2)),
        ValueError, r'out_channels == 1'),
    Case('segmentor_no_pem', 'an empty list of PEMs',
         lambda c: _seg(pem_head=[]), ValueError,
         r'pem_head must be a dict or a non-empty list'),
    Case(
        'segmentor_pem_classes', "a PEM's classes != the decode head's",
        lambda c: _seg(
            pem_head=dict(
                type='PEMFCNHead', in_channels=8, in_index=2, num_classes=3)),
        ValueError, r'pem_head\[0\]\.num_classes must equal.*\(4\), got 3'),
    Case(
        'segmentor_pem_type', 'a pem_head that is no PEM', lambda c: _seg(
            pem_head=dict(
                type='FCNHead',
                in_channels=8,
                in_index=2,
                channels=8,
                num_classes=4)), TypeError,
        r'pem_head\[0\] must build a PEMDecodeHead.*FCNHead'),
    Case('segmentor_scale_factor', 'segmentor scale_factor < 0',
         lambda c: _seg(scale_factor=-0.5), ValueError,
         r'scale_factor must be a finite number >= 0, got -0.5'),
    Case('synthetic_size', 'synthetic image size',
         lambda c: generate_synthetic_lt(c.tmp, size=40), ValueError,
         r'size must be a multiple of 16 and >= 32, got 40'),
    Case('synthetic_area_shares_length', 'synthetic class shares count',
         lambda c: generate_synthetic_lt(c.tmp, area_shares=[0.1]), ValueError,
         r'area_shares must have 5 entries.*got 1'),
    Case(
        'synthetic_area_shares_values', 'synthetic class shares values',
        lambda c: generate_synthetic_lt(
            c.tmp, area_shares=[0.5, 0.3, 0.2, 0.1, 0.05]), ValueError,
        r'area_shares must be positive and sum to < 1'),
    # mmnpe.cls
    Case('cls_num_pems', 'NPEClsHead num_pems < 0',
         lambda c: _cls_head(num_pems=-1), ValueError,
         r'num_pems must be an integer >= 0, got -1'),
    Case('cls_num_classes', 'NPEClsHead num_classes < 2',
         lambda c: _cls_head(num_classes=1), ValueError,
         r'num_classes must be an int > 1.*got 1'),
    Case('cls_pem_loss_weight', 'NPEClsHead pem_loss_weight < 0',
         lambda c: _cls_head(pem_loss_weight=-1), ValueError,
         r'pem_loss_weight must be a number >= 0, got -1'),
    Case(
        'cls_soft_labels', 'Mixup/CutMix soft labels with PEMs',
        lambda c: _cls_head().loss(
            (torch.zeros(2, 8), ), [_soft_sample(),
                                    _soft_sample()]), ValueError,
        r'needs hard labels.*Mixup, CutMix'),
    Case('cifar_resnet_depth', 'CifarResNet depth',
         lambda c: _cifar_resnet(depth=33), ValueError,
         r'depth must be one of \[20, 32, 44, 56, 110\], got 33'),
    Case('cifar_resnet_out_indices', 'CifarResNet out_indices',
         lambda c: _cifar_resnet(out_indices=(5, )), ValueError,
         r'out_indices must hold stage indices.*\(5,\)'),
    Case('lt_ratio', 'imbalance_ratio < 1 or not finite',
         lambda c: DigitsLT(imbalance_ratio=0.5), ValueError,
         r'imbalance_ratio must be a finite number >= 1.*got 0.5'),
    Case(
        'lt_empty_class_digits', 'an LT subsample leaving a class empty',
        lambda c: DigitsLT(imbalance_ratio=1000), ValueError,
        r'imbalance_ratio=1000 leaves class 7 without training images.*'
        r'classes \[7, 8, 9\]'),
    Case(
        'lt_empty_class_cifar', 'an LT subsample leaving a class empty',
        cifar_lt_empty_class, ValueError,
        r'imbalance_ratio=100 leaves class \d without training images.*'
        r'keep imbalance_ratio < 30'),
    Case('digits_split', 'DigitsLT split', lambda c: DigitsLT(split='val'),
         ValueError, r"split must be 'train' or 'test', got 'val'"),
    Case('digits_num_test', 'DigitsLT test images per class',
         lambda c: DigitsLT(num_test_per_class=0), ValueError,
         r'num_test_per_class must be an int in \[1, 149\], got 0'),
    Case('cifar_missing', 'CIFAR folder missing',
         lambda c: CIFAR10LT(data_root=osp.join(c.tmp, 'nothing')),
         RuntimeError, r'CIFAR10LT: no data at .*nothing'),
    Case(
        'cifar_corrupt', 'CIFAR files failing their md5', lambda c: CIFAR10LT(
            data_root=write_fake_cifar(osp.join(c.tmp, 'c')),
            imbalance_ratio=2), RuntimeError,
        r'missing or corrupt \(md5 mismatch'),
    Case('lt_metric_thresholds', 'Many/Few thresholds in the wrong order',
         lambda c: LongTailAccuracy(many_threshold=10, few_threshold=20),
         ValueError, r'few_threshold must be < many_threshold'),
    Case('lt_metric_threshold_type', 'a threshold that is no number',
         lambda c: LongTailAccuracy(many_threshold='100'), ValueError,
         r"many_threshold must be a number, got '100'"),
    Case('lt_metric_no_counts', 'accuracy groups without class counts',
         lambda c: LongTailAccuracy().compute_metrics([(0, 0)]), ValueError,
         r'needs training counts per class'),
    Case('lt_metric_shapes', 'predictions and labels of different shapes',
         lambda c: LongTailAccuracy.calculate([0, 1], [0], [5, 5]), ValueError,
         r'pred and target must be \(N,\).*\(2,\).*\(1,\)'),
    Case('lt_metric_labels', 'labels outside the counted classes',
         lambda c: LongTailAccuracy.calculate([0, 1], [0, 3], [5, 5]),
         ValueError, r'labels outside \[0, 1\]'),
    Case('fuse_not_npe', 'fusing a model without NPEClsHead',
         lambda c: _fuse_linear_head(), ValueError,
         r"needs model.head.type to be an NPE head .*got 'LinearClsHead'"),
    # mmnpe.engine: hooks and the run
    Case('frozen_hook_modules', 'FrozenBackboneHook modules argument',
         lambda c: HOOKS.build(dict(type='FrozenBackboneHook', modules=[])),
         ValueError, r'modules must be None or a non-empty list.*\[\]'),
    Case('frozen_hook_unknown_module', 'freezing a module the model lacks',
         lambda c: _train(c, custom_hooks=[_frozen('backbone', 'nek')]),
         ValueError, r"modules names 'nek'.*its modules are"),
    Case(
        'frozen_hook_nothing_left', 'freezing everything', lambda c: _train(
            c,
            custom_hooks=[
                _frozen('backbone', 'decode_head', 'auxiliary_head',
                        'pem_heads')
            ]), ValueError, r'nothing is left to train'),
    Case(
        'frozen_hook_no_default', 'no default module to freeze',
        lambda c: FrozenBackboneHook().before_train(
            _FakeRunner(nn.Linear(2, 2))), ValueError,
        r"none of the default modules.*Linear.*modules="),
    Case('input_check_arguments', 'InputCheckHook switches',
         lambda c: InputCheckHook(check_batches='yes'), TypeError,
         r"check_batches must be a bool, got 'yes'"),
    Case(
        'unknown_component', 'a config naming an unknown component',
        unknown_component, UnknownComponentError,
        r"type='PEMFCNHaed' is not in the mmseg::model registry; the "
        r"nearest registered names are 'PEMFCNHead'"),
    Case(
        'unknown_transform', 'an unknown transform in a pipeline',
        unknown_transform, UnknownComponentError,
        r"type='LoadAnnotation' is not in the mmseg::transform registry;"
        r".*'LoadAnnotations'"),
    Case(
        'pem_classes_vs_dataset', "a PEM's num_classes != the data set's",
        pem_classes_differ_from_dataset, ValueError,
        r'train data set \(SyntheticLTDataset\) has 6 classes.*'
        r'model\.pem_heads\[0\]\.num_classes = 5'),
    Case(
        'annotation_size', 'an annotation of another size than its image',
        annotation_size_differs, ValueError,
        r"annotation '.*ann_dir/train/\w+\.png' is \(16, 32\).*image is "
        r'\(32, 32\)'),
    Case(
        'nan_in_batch', 'a NaN in an input batch', nan_in_batch, ValueError,
        r'train iteration 0, sample 1 of the batch '
        r"\(img_path='.*\.png'\): the input holds 1 non-finite values.*"
        r'first at index \(0, 1, 2\)'),
    Case('nan_in_batch_weights', 'a NaN never reaches the weights',
         nan_in_batch_weights_untouched, ValueError,
         r'sample 0 of the batch.*non-finite'),
    Case('load_from_missing', 'a load_from path that does not exist',
         load_from_missing, FileNotFoundError,
         r"load_from = '.*no_such_checkpoint\.pth': no such checkpoint"),
    Case('resume_missing', '--resume PATH that does not exist',
         resume_path_missing, FileNotFoundError,
         r"--resume '.*iter_9\.pth': no such checkpoint file"),
    Case(
        'checkpoint_architecture', 'a checkpoint of another architecture',
        load_from_other_architecture, ValueError,
        r"checkpoint '.*demo_unet\.pth' -> NPEEncoderDecoder: \d+ tensors "
        r'the run uses as they are did not load: backbone\.[\w.]+ '
        r'\(checkpoint torch.Size\(\[\d+.*\]\) vs model torch.Size.*they '
        r'are frozen'),
    Case(
        'unsafe_checkpoint', 'a checkpoint holding an arbitrary object',
        unsafe_checkpoint, UnsafeCheckpointError,
        r"checkpoint '.*evil\.pth' holds posix\.system.*refused and not "
        r'executed'),
    # tools/
    Case(
        'tool_unknown_transform', 'tools/train.py: unknown component',
        _tool('tool_unknown_transform'), UnknownComponentError,
        r"type='LoadAnnotation'.*nearest registered names are "
        r"'LoadAnnotations'"),
    Case(
        'tool_amp_other_wrapper', 'tools/train.py --amp on another wrapper',
        _tool('tool_amp_other_wrapper'), ValueError,
        r'--amp needs optim_wrapper.type = OptimWrapper, got '
        r'ApexOptimWrapper'),
    Case('tool_tta_without_config', 'tools/test.py --tta without TTA config',
         _tool('tool_tta_without_config'), ValueError,
         r'--tta needs tta_model and tta_pipeline'),
    Case('tool_checkpoint_missing', 'tools/test.py on a missing checkpoint',
         _tool('tool_checkpoint_missing'), FileNotFoundError,
         r"load_from = '.*no_such\.pth'"),
]


def _soft_sample():
    from mmpretrain.structures import DataSample
    return DataSample().set_gt_label(0).set_gt_score(torch.ones(10) / 10)


def _cifar_resnet(**kwargs):
    from mmnpe.cls.backbones import CifarResNet
    return CifarResNet(**kwargs)


def _fuse_linear_head():
    from mmnpe.cls import fuse_npe_classifier
    cfg = Config(
        dict(
            model=dict(
                type='ImageClassifier',
                head=dict(type='LinearClsHead', num_classes=10,
                          in_channels=8))))
    fuse_npe_classifier(cfg, {})


@pytest.fixture(autouse=True)
def _default_scope():
    """Children (data preprocessors, losses) build in mmseg's scope, as in
    an mmseg config; classification cases switch to mmpretrain's."""
    init_default_scope('mmseg')


def test_at_least_25_cases_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 25


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.id)
def test_bad_input_is_refused(case, tmp_path, synthetic_root, request):
    ctx = Ctx(tmp_path, synthetic_root)
    if case.id.startswith('tool_'):
        ctx.tool_outputs = request.getfixturevalue('tool_outputs')
    with pytest.raises(case.exc) as info:
        case.trigger(ctx)
    assert type(info.value) is case.exc or isinstance(info.value, case.exc)
    assert re.search(case.match, str(info.value), re.S), str(info.value)


def test_good_inputs_pass_the_same_checks(tmp_path, synthetic_root):
    """Controls: the checks the suite triggers leave a correct run alone
    (a real stock checkpoint of the same model, finite data, matching
    classes and sizes, a correct type name)."""
    ctx = Ctx(tmp_path, synthetic_root)
    model = _seg(num_classes=6)
    ckpt = osp.join(ctx.tmp, 'stock.pth')
    state = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith('pem_heads.')
    }
    torch.save(dict(meta=dict(), state_dict=state), ckpt)
    runner = _train(ctx, load_from=ckpt)
    assert runner.iter == 2
    hooks = [type(h).__name__ for h in runner.hooks]
    assert 'InputCheckHook' in hooks and 'RandomStateHook' in hooks
    batch = random_seg_batch(num_classes=6)
    batch['inputs'] = [x.float() for x in batch['inputs']]
    InputCheckHook().before_train_iter(runner, 0, batch)
    check_load_from(Config(dict(load_from=ckpt)))


def test_validation_page_lists_every_case():
    page = osp.join(REPO, 'docs', 'advanced_guides', 'validation.md')
    with open(page) as f:
        text = f.read()
    missing = [c.id for c in CASES if f'`{c.id}`' not in text]
    assert not missing, missing


def test_tool_errors_keep_the_frame_where_the_build_failed(tool_outputs):
    """The readable error is raised *from* mmengine's, so the tool's
    traceback still shows where the build failed."""
    out, code = tool_outputs['tool_unknown_transform']
    assert code != 0
    assert ('The above exception was the direct cause of the following '
            'exception') in out
    assert re.search(
        r"KeyError: 'LoadAnnotation is not in the \S+ "
        'registry', out), out[-2000:]
    assert 'nearest registered names' in out.splitlines()[-1]
