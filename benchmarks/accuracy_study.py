"""Accuracy study on the data that ships with the repo.

Every long-tail method mmnpe has, over several training seeds, on

- DigitsLT (scikit-learn's real 8x8 digits, long-tailed; rho 10 and 50;
  balanced held-out test split), ResNet-32: CE, LA loss, LA post-hoc (on
  the CE run), Balanced Softmax, cRT and IWB (stage 2 on the CE run; when
  their demo configs exist), NPE-LA with 1 and 16 PEMs;
- the synthetic long-tailed segmentation set, the demo's UNet + FCN: CE
  baseline, post-hoc LA (tau = 1, and tau swept), Balanced Softmax
  fine-tuning, NPE-LA with a linear PEM and a structured one (the decode
  head's 3x3 conv + 1x1, no BN) at alpha = 1 and at the alpha the one-pass
  sweep picks.

- the synthetic long-tailed detection set in LVIS v1 format, the demo's
  small Faster R-CNN and mmdet's LVISMetric (AP, AP_r, AP_c, AP_f): CE,
  repeat-factor sampling, Balanced Sigmoid, post-hoc LA and NPE-LA (a PEM
  on the frozen CE detector) at alpha = 1 and at the alpha chosen by AP on
  a selection set (when mmdet is installed).

The swept tau / alpha is chosen by mIoU on a *separate* selection set
(the generator with another seed), never on the images reported. Each NPE
run also reports the Pearson correlation of its per-class mean estimate
with the log class frequency over its training set (prior recovery).

The runs are the demo configs in ``configs/demo/`` with ``--cfg-options``
style overrides (shorter schedules, the seed, the data), trained and tested
through the ``Runner`` as ``tools/train.py`` / ``tools/test.py`` would.
Work is spread over ``--workers`` processes with one thread each; seeds
are set with ``randomness.deterministic``. Each study writes its own JSON
(every run, with the commit, the command and the machine) and markdown table
(mean +- sample std over seeds): classification and segmentation
``benchmarks/accuracy_study.{md,json}`` (``--md`` / ``--json``), detection
``benchmarks/detection_study.{md,json}`` (``--det-md`` / ``--det-json``),
``--label-shift`` ``benchmarks/label_shift_study.{md,json}`` (``--ls-md`` /
``--ls-json``); a part that does not run leaves its files alone.
``--doc PAGE`` copies the classification and segmentation table into a
documentation page between its ``accuracy_study`` markers (``make study``:
``docs/results.md``).

    python benchmarks/accuracy_study.py [--workers 2] [--seeds 0 1 2 3 4]
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Dict, List, Optional

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs', 'demo')

CLS_CE = 'CE'
# name -> (config, kind): 'scratch' trains from scratch, 'posthoc' tests
# the CE checkpoint, 'stage2' trains from it.
CLS_METHODS = {
    CLS_CE: ('ce_resnet32_digits-lt.py', 'scratch'),
    'LA loss': ('la-loss_resnet32_digits-lt.py', 'scratch'),
    'LA post-hoc': ('la-posthoc_resnet32_digits-lt.py', 'posthoc'),
    'Balanced Softmax': ('balanced-softmax_resnet32_digits-lt.py', 'scratch'),
    'cRT': ('crt_resnet32_digits-lt.py', 'stage2'),
    'IWB': ('iwb_resnet32_digits-lt.py', 'stage2'),
    'NPE-LA K=1': ('npe-la-k1_resnet32_digits-lt.py', 'scratch'),
    'NPE-LA K=16': ('npe-la-k16_resnet32_digits-lt.py', 'scratch'),
}
SEG_BASE = 'fcn_unet-tiny_synthetic-lt-64x64.py'
SEG_LA = 'la-posthoc_fcn_unet-tiny_synthetic-lt-64x64.py'
SEG_BS = 'balanced-softmax_fcn_unet-tiny_synthetic-lt-64x64.py'
SEG_NPE = 'npe_fcn_unet-tiny_synthetic-lt-64x64.py'
# The structured PEM mirrors the demo's decode head (FCNHead: one 3x3 conv,
# then the 1x1 classifier) without BN.
PEMS = {
    'linear': {},
    'structured': {
        'model.pem_head.num_convs': 1,
        'model.pem_head.kernel_size': 3
    },
}
SEG_METHODS = ('CE', 'LA post-hoc', 'Balanced Softmax', 'NPE-LA linear',
               'NPE-LA structured')
CLS_COLS = ('top1', 'balanced', 'many', 'medium', 'few')
SEG_COLS = ('mIoU', 'mDice', 'mAcc')
NO_VAL = {'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None}

DET_CE = 'faster-rcnn_r18-tiny_fpn_synthetic-lvis.py'
# name -> config tag in configs/demo (faster-rcnn_r18-tiny_fpn_{tag}...).
DET_METHODS = {
    'CE': '',
    'repeat-factor sampling': 'sample1e-1_',
    'Balanced Sigmoid': 'balanced-sigmoid_',
    'LA post-hoc': 'la-posthoc_',
    'NPE-LA': 'npe_',
}
DET_COLS = ('AP', 'APr', 'APc', 'APf')
DET_SCALES = [0.1, 0.25, 0.5, 0.75, 1.0]

FULL = dict(
    seeds=[0, 1, 2, 3, 4],
    rhos=[10, 50],
    cls_methods=list(CLS_METHODS),
    cls_epochs=50,
    cls_batch=64,
    seg_methods=list(SEG_METHODS),
    seg_iters=400,
    seg_pem_iters=200,
    seg_num_train=64,
    seg_num_val=16,
    scales=[0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0],
    det_methods=list(DET_METHODS),
    det_iters=300,
    det_pem_iters=150,
    det_num_train=200,
    det_val_per_class=6)


def _config(name: str) -> str:
    return osp.join(DEMO, name)


def _runner(config: str, work_dir: str, name: str, options: dict):
    """The Runner ``tools/train.py`` / ``tools/test.py`` build for
    ``config`` with ``--cfg-options``-style overrides."""
    from mmengine.config import Config

    from mmnpe.engine import build_runner
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.launcher = 'none'
    cfg.merge_from_dict(options)
    return build_runner(cfg)


def _common(seed: int) -> dict:
    return {
        'randomness': dict(seed=seed, deterministic=True),
        'log_level': 'WARNING',
        'default_hooks.logger.interval': 10000,
    }


def _plain(metrics: dict) -> dict:
    return {
        k: v.tolist() if hasattr(v, 'tolist') else v
        for k, v in metrics.items()
    }


def _record(task, setting, method, seed, metrics, start, **extra) -> dict:
    return dict(
        task=task,
        setting=setting,
        method=method,
        seed=seed,
        metrics=metrics,
        seconds=round(time.time() - start, 1),
        **extra)


# Classification -------------------------------------------------------------


def _cls_options(job: dict, kind: str) -> dict:
    rho, seed = job['rho'], job['seed']
    opts = _common(seed)
    opts.update(NO_VAL)
    # rho on the training set only (the held-out split is the same for any
    # rho; ClassCountsHook gives LongTailAccuracy the training counts).
    opts['train_dataloader.dataset.imbalance_ratio'] = rho
    if kind == 'scratch':
        epochs = job['cls_epochs']
        opts.update({
            'train_cfg.max_epochs':
            epochs,
            'train_dataloader.batch_size':
            job['cls_batch'],
            'param_scheduler.milestones':
            [int(0.8 * epochs), int(0.9 * epochs)],
            'default_hooks.checkpoint.interval':
            epochs,
        })
    return opts


def _cls_metrics(metrics: dict) -> dict:
    out = {k.split('/', 1)[1]: v for k, v in _plain(metrics).items()}
    return out


def _cls_run(job: dict, method: str, ce_ckpt: Optional[str] = None) -> dict:
    """Train (or only test) one classification method; returns its record
    (with ``checkpoint``)."""
    start = time.time()
    config, kind = CLS_METHODS[method]
    config = _config(config)
    opts = _cls_options(job, kind)
    if kind in ('posthoc', 'stage2'):
        opts['load_from'] = ce_ckpt
    tag = method.lower().replace(' ', '-').replace('=', '')
    setting = f'DigitsLT rho={job["rho"]:g}'
    work_dir = osp.join(job['out_dir'], f'cls_r{job["rho"]:g}',
                        f's{job["seed"]}', tag)
    runner = _runner(config, work_dir,
                     f'study_cls_r{job["rho"]:g}_s{job["seed"]}_{tag}', opts)
    ckpt = None
    if kind != 'posthoc':
        runner.train()
        ckpt = osp.join(work_dir, f'epoch_{runner.epoch}.pth')
    metrics = _cls_metrics(runner.test())
    extra = {}
    if getattr(runner.model.head, 'num_pems', 0):
        from mmnpe.analysis import prior_recovery
        rec = prior_recovery(config, ckpt, cfg_options=opts)
        extra['pearson'] = rec['stats']['pearson']
    counts = runner.test_evaluator.metrics[0].class_counts
    return _record(
        'cls',
        setting,
        method,
        job['seed'],
        metrics,
        start,
        checkpoint=ckpt,
        train_counts=list(counts),
        **extra)


def cls_ce_chain(job: dict) -> List[dict]:
    """CE, then the methods that start from its checkpoint."""
    ce = _cls_run(job, CLS_CE)
    out = [ce] if CLS_CE in job['methods'] else []
    for method in job['methods']:
        if CLS_METHODS[method][1] in ('posthoc', 'stage2'):
            out.append(_cls_run(job, method, ce['checkpoint']))
    return out


def cls_single(job: dict) -> List[dict]:
    return [_cls_run(job, job['methods'][0])]


# Segmentation ---------------------------------------------------------------


def _seg_data(job: dict, root: str) -> dict:
    # No validation during the study's runs (NO_VAL): train and test only.
    return {
        f'{split}_dataloader.dataset.data_root': root
        for split in ('train', 'test')
    }


def _seg_train_options(job: dict, iters: int, poly: bool) -> dict:
    opts = _common(job['seed'])
    opts.update(NO_VAL)
    opts.update(_seg_data(job, job['data_root']))
    opts.update({
        'train_cfg.max_iters': iters,
        'default_hooks.checkpoint.interval': iters,
    })
    if poly:
        opts['param_scheduler'] = [
            dict(
                type='PolyLR',
                eta_min=1e-4,
                power=0.9,
                by_epoch=False,
                begin=0,
                end=iters)
        ]
    else:
        opts['param_scheduler'] = [
            dict(
                type='MultiStepLR',
                by_epoch=False,
                milestones=[iters // 2, (3 * iters) // 4],
                gamma=0.1)
        ]
    return opts


def _selection_options(job: dict, opts: dict) -> dict:
    """``opts`` with the validation loader on the selection set (where tau
    and alpha are chosen) instead of the reported images."""
    from mmengine.config import Config
    cfg = Config.fromfile(_config(SEG_BASE))
    loader = copy.deepcopy(cfg.test_dataloader.to_dict())
    loader['dataset']['data_root'] = job['selection_root']
    sel = {k: v for k, v in opts.items() if k not in NO_VAL}
    sel.update(_seg_data(job, job['data_root']))
    sel['val_dataloader'] = loader
    return sel


def _seg_metrics(metrics: dict) -> dict:
    m = _plain(metrics)
    keep = {k: float(m[k]) for k in (*SEG_COLS, 'aAcc')}
    keep['IoU'] = {
        k.split('.', 1)[1]: float(v)
        for k, v in m.items() if k.startswith('IoU.')
    }
    return keep


def _swept(job: dict, config: str, ckpt: str, opts: dict) -> dict:
    """Best scale by mIoU on the selection set (one-pass sweep)."""
    from mmnpe.analysis import scale_sweep
    result = scale_sweep(
        config,
        ckpt,
        job['scales'],
        split='val',
        cfg_options=_selection_options(job, opts))
    return result['best']['mIoU']


def seg_chain(job: dict) -> List[dict]:
    """The CE baseline of one seed, then the methods built on it."""
    seed, out_dir = job['seed'], job['out_dir']
    setting = 'synthetic seg'
    work = osp.join(out_dir, 'seg', f's{seed}')
    records = []

    start = time.time()
    opts = _seg_train_options(job, job['seg_iters'], poly=True)
    runner = _runner(
        _config(SEG_BASE), osp.join(work, 'ce'), f'study_seg_s{seed}_ce', opts)
    runner.train()
    base_ckpt = osp.join(work, 'ce', f'iter_{runner.iter}.pth')
    records.append(
        _record('seg', setting, 'CE', seed, _seg_metrics(runner.test()),
                start))
    methods = job['methods']

    if 'LA post-hoc' in methods:
        start = time.time()
        la_opts = _common(seed)
        la_opts.update(NO_VAL)
        la_opts.update(_seg_data(job, job['data_root']))
        la_opts.update({
            'load_from': base_ckpt,
            'model.class_counts': job['counts_json'],
            'model.tau': 1.0
        })
        runner = _runner(
            _config(SEG_LA), osp.join(work, 'la'), f'study_seg_s{seed}_la',
            la_opts)
        records.append(
            _record('seg', setting, 'LA post-hoc tau=1', seed,
                    _seg_metrics(runner.test()), start))
        best = _swept(job, _config(SEG_LA), base_ckpt, la_opts)
        runner.model.tau = best['scale']
        records.append(
            _record(
                'seg',
                setting,
                'LA post-hoc tau swept',
                seed,
                _seg_metrics(runner.test()),
                start,
                scale=best['scale']))

    if 'Balanced Softmax' in methods:
        start = time.time()
        bs_opts = _seg_train_options(job, job['seg_pem_iters'], poly=False)
        bs_opts.update({
            'load_from':
            base_ckpt,
            'model.decode_head.loss_decode.class_counts':
            job['counts_json']
        })
        runner = _runner(
            _config(SEG_BS), osp.join(work, 'bs'), f'study_seg_s{seed}_bs',
            bs_opts)
        runner.train()
        records.append(
            _record('seg', setting, 'Balanced Softmax', seed,
                    _seg_metrics(runner.test()), start))

    for pem, pem_opts in PEMS.items():
        if f'NPE-LA {pem}' not in methods:
            continue
        start = time.time()
        npe_opts = _seg_train_options(job, job['seg_pem_iters'], poly=False)
        npe_opts.update(pem_opts)
        npe_opts.update({'load_from': base_ckpt, 'model.scale_factor': 1.0})
        work_dir = osp.join(work, f'npe_{pem}')
        runner = _runner(
            _config(SEG_NPE), work_dir, f'study_seg_s{seed}_npe_{pem}',
            npe_opts)
        runner.train()
        ckpt = osp.join(work_dir, f'iter_{runner.iter}.pth')
        from mmnpe.analysis import prior_recovery
        pearson = prior_recovery(
            _config(SEG_NPE), ckpt, cfg_options=npe_opts)['stats']['pearson']
        records.append(
            _record(
                'seg',
                setting,
                f'NPE-LA {pem}, alpha=1',
                seed,
                _seg_metrics(runner.test()),
                start,
                pearson=pearson))
        best = _swept(job, _config(SEG_NPE), ckpt, npe_opts)
        runner.model.scale_factor = best['scale']
        records.append(
            _record(
                'seg',
                setting,
                f'NPE-LA {pem}, alpha swept',
                seed,
                _seg_metrics(runner.test()),
                start,
                scale=best['scale'],
                pearson=pearson))
    return records


# Detection ------------------------------------------------------------------


def _det_config(method: str) -> str:
    return _config(f'faster-rcnn_r18-tiny_fpn_{DET_METHODS[method]}'
                   'synthetic-lvis.py')


def _det_runner(method: str,
                work_dir: str,
                name: str,
                job: dict,
                options: dict,
                val_root: Optional[str] = None):
    """The Runner tools/train.py / tools/test.py build for a detection demo
    config on the study's set (``val_root``: test on another set)."""
    from mmengine.config import Config

    from mmnpe.engine import build_runner, pipeline_dataset_cfgs
    cfg = Config.fromfile(_det_config(method))
    for split in ('train', 'test'):
        root = job['det_root'] if split == 'train' else (val_root
                                                         or job['det_root'])
        for node in pipeline_dataset_cfgs(cfg[f'{split}_dataloader'].dataset):
            node.data_root = root + '/'
    cfg.test_evaluator.ann_file = ((val_root or job['det_root']) +
                                   '/annotations/lvis_v1_val.json')
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.launcher = 'none'
    opts = _common(job['seed'])
    opts.update(NO_VAL)
    opts.update(options)
    cfg.merge_from_dict(opts)
    return build_runner(cfg)


def _det_metrics(metrics: dict) -> dict:
    """LVISMetric's bbox AP in percent; None for an empty group."""
    out = {}
    for key, value in _plain(metrics).items():
        name = key.split('bbox_', 1)[-1]
        if name in DET_COLS:
            out[name] = None if value < 0 else 100 * float(value)
    return out


def _det_schedule(iters: int) -> dict:
    return {
        'train_cfg.max_iters': iters,
        'default_hooks.checkpoint.interval': iters,
    }


def _det_train(job: dict, method: str, tag: str, options: dict):
    work_dir = osp.join(job['out_dir'], 'det', f's{job["seed"]}', tag)
    runner = _det_runner(method, work_dir, f'study_det_s{job["seed"]}_{tag}',
                         job, options)
    runner.train()
    return runner, osp.join(work_dir, f'iter_{runner.iter}.pth')


def det_single(job: dict) -> List[dict]:
    """One detection method trained from scratch (repeat-factor sampling,
    Balanced Sigmoid) and tested."""
    start = time.time()
    method = job['methods'][0]
    tag = method.lower().replace(' ', '-')
    runner, _ = _det_train(job, method, tag, _det_schedule(job['det_iters']))
    return [
        _record('det', 'synthetic LVIS', method, job['seed'],
                _det_metrics(runner.test()), start)
    ]


def det_chain(job: dict) -> List[dict]:
    """CE, then post-hoc LA and NPE-LA on its checkpoint; NPE-LA's alpha
    swept is chosen by AP on the selection set."""
    seed, methods = job['seed'], job['methods']
    records, start = [], time.time()
    runner, ce_ckpt = _det_train(job, 'CE', 'ce',
                                 _det_schedule(job['det_iters']))
    records.append(
        _record('det', 'synthetic LVIS', 'CE', seed,
                _det_metrics(runner.test()), start))
    if 'LA post-hoc' in methods:
        start = time.time()
        work_dir = osp.join(job['out_dir'], 'det', f's{seed}', 'la')
        runner = _det_runner('LA post-hoc', work_dir, f'study_det_s{seed}_la',
                             job, {'load_from': ce_ckpt})
        records.append(
            _record('det', 'synthetic LVIS', 'LA post-hoc tau=1', seed,
                    _det_metrics(runner.test()), start))
    if 'NPE-LA' in methods:
        start = time.time()
        options = _det_schedule(job['det_pem_iters'])
        options.update({
            'load_from':
            ce_ckpt,
            'param_scheduler': [
                dict(
                    type='MultiStepLR',
                    by_epoch=False,
                    milestones=[
                        int(2 * job['det_pem_iters'] / 3),
                        int(5 * job['det_pem_iters'] / 6)
                    ],
                    gamma=0.1)
            ]
        })
        runner, ckpt = _det_train(job, 'NPE-LA', 'npe', options)
        head = runner.model.roi_head.bbox_head
        records.append(
            _record('det', 'synthetic LVIS', 'NPE-LA alpha=1', seed,
                    _det_metrics(runner.test()), start))
        selector = _det_runner(
            'NPE-LA',
            osp.join(job['out_dir'], 'det', f's{seed}', 'npe_select'),
            f'study_det_s{seed}_npe_select',
            job, {'load_from': ckpt},
            val_root=job['det_selection_root'])
        scores = {}
        for scale in job['det_scales']:
            selector.model.roi_head.bbox_head.scale_factor = scale
            scores[scale] = _det_metrics(selector.test())['AP']
        best = max(job['det_scales'], key=lambda a: (scores[a], -a))
        head.scale_factor = best
        records.append(
            _record(
                'det',
                'synthetic LVIS',
                'NPE-LA alpha swept',
                seed,
                _det_metrics(runner.test()),
                start,
                scale=best))
    return records


def det_plan(settings: dict, out_dir: str) -> List[tuple]:
    """The detection jobs: per seed, the CE chain and one job per method
    trained from scratch."""
    methods = settings.get('det_methods') or []
    if not methods:
        return []
    jobs = []
    for seed in settings['seeds']:
        base = dict(
            seed=seed,
            out_dir=out_dir,
            det_root=settings['det_root'],
            det_selection_root=settings['det_selection_root'],
            det_iters=settings['det_iters'],
            det_pem_iters=settings['det_pem_iters'],
            det_scales=DET_SCALES)
        jobs.append(('det_chain', dict(base, methods=methods)))
        for m in ('repeat-factor sampling', 'Balanced Sigmoid'):
            if m in methods:
                jobs.append(('det_single', dict(base, methods=[m])))
    return jobs


def prepare_det_data(settings: dict, out_dir: str) -> None:
    """The synthetic LVIS-format set and its selection set (another seed:
    where NPE-LA's alpha is chosen), in place in ``settings``."""
    if not settings.get('det_methods'):
        return
    from mmnpe.det import generate_synthetic_lvis
    root = osp.join(out_dir, 'data', 'synthetic_lvis')
    selection = osp.join(out_dir, 'data', 'synthetic_lvis_selection')
    # The demo's set (n_max = 160 of 200 images); smaller sets keep the
    # most frequent category in 80 % of the images.
    size = dict(
        num_train=settings['det_num_train'],
        n_max=int(0.8 * settings['det_num_train']),
        val_per_class=settings['det_val_per_class'])
    info = generate_synthetic_lvis(root, **size)
    generate_synthetic_lvis(selection, seed=1, **size)
    settings.update(
        det_root=root,
        det_selection_root=selection,
        det_train_instances=info['instance_counts'],
        det_frequency=info['frequency'])


def _det_markdown(s: dict, methods: Dict[str, dict]) -> List[str]:
    counts = ' / '.join(
        f'{n}{t}'
        for n, t in zip(s['det_train_instances'], s['det_frequency']))
    lines = [
        f'**synthetic LVIS** ({len(s["det_train_instances"])} categories, '
        f'training instances per category (frequency tag) {counts}; '
        f'Faster R-CNN ResNet-18/16 + FPN, {s["det_iters"]} iterations at '
        f'batch 2; the PEM {s["det_pem_iters"]} on the frozen CE detector; '
        'alpha swept over '
        f'{_scale_cell(DET_SCALES)} by AP on a selection set; LVISMetric '
        'bbox AP)', '',
        '| method | AP | AP_r | AP_c | AP_f | alpha per seed |',
        '|---|---|---|---|---|---|'
    ]
    order = [
        'CE', 'repeat-factor sampling', 'Balanced Sigmoid',
        'LA post-hoc tau=1', 'NPE-LA alpha=1', 'NPE-LA alpha swept'
    ]
    for name in [n for n in order if n in methods]:
        row = methods[name]
        cells = [_mean_std(row[c]) for c in DET_COLS]
        cells.append(_scale_cell(row['scale']) if 'scale' in row else '')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return lines


# Provenance ------------------------------------------------------------------


def _cpu_model() -> Optional[str]:
    """The CPU's model name (Linux), else None."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict:
    """What ran the study: CPU, operating system, Python, the libraries'
    versions and the GPU (None: the study ran on the CPU)."""
    info = dict(
        cpu_count=os.cpu_count(),
        processor=platform.processor() or platform.machine(),
        cpu_model=_cpu_model(),
        system=f'{platform.system()} {platform.release()}',
        python=platform.python_version())
    import importlib
    for name in ('torch', 'mmcv', 'mmengine', 'mmseg', 'mmpretrain', 'mmdet'):
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:
            info[name] = None
    import torch
    info['gpu'] = (
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    return info


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', REPO, *args],
                             capture_output=True,
                             text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _portable_arg(arg: str) -> str:
    """An absolute path inside the repository, relative to it (the
    command is written into committed files)."""
    if osp.isabs(arg) and osp.commonpath([arg, REPO]) == REPO:
        return osp.relpath(arg, REPO)
    return arg


def provenance(argv: Optional[List[str]] = None) -> dict:
    """The commit (and whether tracked files differed from it) and the
    command of a study run, for the JSON and the table it writes (the
    machine is the result's ``machine``).

    Args:
        argv (list[str], optional): The script's arguments (default:
            ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    status = _git('status', '--porcelain', '--untracked-files=no')
    return dict(
        commit=_git('rev-parse', 'HEAD'),
        uncommitted_changes=None if status is None else bool(status),
        command=' '.join(['python benchmarks/accuracy_study.py'] +
                         [shlex.quote(_portable_arg(a)) for a in argv]))


def provenance_line(result: dict) -> str:
    """One sentence of a study's table saying where it came from."""
    prov, m = result['provenance'], result['machine']
    commit = (prov['commit'] or 'unknown')[:12]
    if prov.get('uncommitted_changes'):
        commit += ' with uncommitted changes'
    where = m.get('cpu_model') or m['processor']
    device = f'GPU {m["gpu"]}' if m.get('gpu') else 'no GPU'
    return (f'Produced by `{prov["command"]}` at commit {commit} on '
            f'{m["cpu_count"]} cores of {where} ({device}; torch '
            f'{m.get("torch")}, Python {m["python"]}).')


# Planning, running, reporting -----------------------------------------------


def available_cls_methods(methods: List[str]) -> List[str]:
    """The requested methods whose demo config exists (cRT and IWB arrive
    with their configs)."""
    return [m for m in methods if osp.isfile(_config(CLS_METHODS[m][0]))]


def plan(settings: dict, out_dir: str) -> List[tuple]:
    """(function name, job) pairs, longest first."""
    jobs = []
    cls_methods = settings['cls_methods']
    for seed in settings['seeds']:
        if settings['seg_methods']:
            jobs.append(('seg_chain',
                         dict(
                             seed=seed,
                             out_dir=out_dir,
                             methods=settings['seg_methods'],
                             seg_iters=settings['seg_iters'],
                             seg_pem_iters=settings['seg_pem_iters'],
                             scales=settings['scales'],
                             data_root=settings['data_root'],
                             selection_root=settings['selection_root'],
                             counts_json=settings['counts_json'])))
    for rho in settings['rhos']:
        for seed in settings['seeds']:
            base = dict(
                rho=rho,
                seed=seed,
                out_dir=out_dir,
                cls_epochs=settings['cls_epochs'],
                cls_batch=settings['cls_batch'])
            chain = [
                m for m in cls_methods
                if m == CLS_CE or CLS_METHODS[m][1] != 'scratch'
            ]
            if chain:
                jobs.append(('cls_ce_chain', dict(base, methods=chain)))
            for m in cls_methods:
                if m not in chain:
                    jobs.append(('cls_single', dict(base, methods=[m])))
    return jobs + det_plan(settings, out_dir)


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)
    import mmnpe  # noqa: F401


def _call(name: str, job: dict) -> List[dict]:
    return globals()[name](job)


def prepare_data(settings: dict, out_dir: str) -> None:
    """The synthetic set, its selection set and pixel counts (in place in
    ``settings``)."""
    if not settings['seg_methods']:
        return
    from mmengine.config import Config

    from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                              write_class_counts)
    from mmnpe.seg import generate_synthetic_lt
    data_root = osp.join(out_dir, 'data', 'synthetic_lt')
    selection_root = osp.join(out_dir, 'data', 'synthetic_lt_selection')
    generate_synthetic_lt(
        data_root,
        num_train=settings['seg_num_train'],
        num_val=settings['seg_num_val'])
    # Same generator, another seed: where tau and alpha are chosen.
    generate_synthetic_lt(
        selection_root, num_train=1, num_val=settings['seg_num_val'], seed=1)
    cfg = Config.fromfile(_config(SEG_BASE))
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': data_root})
    counts = count_dataset_classes(build_counting_dataset(cfg))
    counts_json = osp.join(data_root, 'pixel_counts.json')
    write_class_counts(counts, counts_json)
    settings.update(
        data_root=data_root,
        selection_root=selection_root,
        counts_json=counts_json,
        seg_train_pixels=counts['counts'],
        seg_classes=counts['classes'])


def run_study(settings: dict, out_dir: str, workers: int = 1) -> dict:
    """Run every job; returns the records and the settings used."""
    settings = copy.deepcopy(settings)
    available = available_cls_methods(settings['cls_methods'])
    settings['cls_missing'] = [
        m for m in settings['cls_methods'] if m not in available
    ]
    settings['cls_methods'] = available
    unknown = set(settings['seg_methods']) - set(SEG_METHODS)
    if unknown:
        raise ValueError(f'seg_methods must be among {SEG_METHODS}, got '
                         f'{sorted(unknown)}')
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    load_start = os.getloadavg()
    prepare_data(settings, out_dir)
    prepare_det_data(settings, out_dir)
    records = _run_jobs(plan(settings, out_dir), workers)
    return dict(
        settings=settings,
        records=records,
        wall_seconds=round(time.time() - start, 1),
        workers=workers,
        load_average_start=load_start,
        load_average_end=os.getloadavg(),
        machine=machine())


def _mean_std(values: List[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'


def _scale_cell(values: List[float]) -> str:
    return ', '.join(f'{v:g}' for v in values)


def aggregate(records: List[dict]) -> Dict[str, Dict[str, dict]]:
    """setting -> method -> {metric: [values over seeds], ...} in the order
    the records come."""
    out: Dict[str, Dict[str, dict]] = {}
    for r in records:
        row = out.setdefault(r['setting'],
                             {}).setdefault(r['method'],
                                            dict(task=r['task'], seeds=[]))
        row['seeds'].append(r['seed'])
        cols = dict(cls=CLS_COLS, seg=SEG_COLS, det=DET_COLS)[r['task']]
        for c in cols:
            row.setdefault(c, []).append(r['metrics'].get(c))
        for key in ('pearson', 'scale'):
            if key in r:
                row.setdefault(key, []).append(r[key])
    return out


def _order(setting_rows: dict, task: str) -> List[str]:
    if task == 'cls':
        names = list(CLS_METHODS)
    else:
        names = [
            'CE', 'LA post-hoc tau=1', 'LA post-hoc tau swept',
            'Balanced Softmax'
        ] + [f'NPE-LA {p}, alpha{a}' for p in PEMS for a in ('=1', ' swept')]
    return [n for n in names if n in setting_rows]


def markdown(result: dict) -> str:
    """The study's tables (mean ± sample std over seeds) and how they were
    made."""
    s = result['settings']
    rows = aggregate(result['records'])
    seeds = s['seeds']
    lines = []
    for setting, methods in rows.items():
        task = next(iter(methods.values()))['task']
        if task == 'cls':
            counts = next(r['train_counts'] for r in result['records']
                          if r['setting'] == setting)
            lines += [
                f'**{setting}** (training images per class '
                f'{" / ".join(str(c) for c in counts)}; test: 50 per class; '
                f'ResNet-32, {s["cls_epochs"]} epochs at batch '
                f'{s["cls_batch"]}; Many > 100, Few < 20 training images)', '',
                '| method | top-1 | balanced | Many | Medium | Few | '
                'prior recovery r |', '|---|---|---|---|---|---|---|'
            ]
            for name in _order(methods, 'cls'):
                row = methods[name]
                cells = [_mean_std(row[c]) for c in CLS_COLS]
                cells.append(_mean_std(row.get('pearson', [])))
                lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
        elif task == 'det':
            lines += _det_markdown(s, methods)
        else:
            pixels = ' / '.join(str(p) for p in s['seg_train_pixels'])
            lines += [
                f'**{setting}** ({len(s["seg_classes"])} classes, training '
                f'pixels per class {pixels}; UNet-tiny + FCN, CE '
                f'{s["seg_iters"]} iterations; Balanced Softmax and PEMs '
                f'{s["seg_pem_iters"]} on the frozen CE model; tau / alpha '
                f'swept over {_scale_cell(s["scales"])} on a separate '
                'selection set)', '',
                '| method | mIoU | mDice | mAcc | tau / alpha per seed | '
                'prior recovery r |', '|---|---|---|---|---|---|'
            ]
            for name in _order(methods, 'seg'):
                row = methods[name]
                cells = [_mean_std(row[c]) for c in SEG_COLS]
                cells.append(
                    _scale_cell(row['scale']) if 'scale' in row else '')
                cells.append(_mean_std(row.get('pearson', [])))
                lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    missing = s.get('cls_missing', [])
    load = ', '.join(f'{a:.1f}' for a in (result['load_average_start'][0],
                                          result['load_average_end'][0]))
    lines.append(
        f'Mean ± sample std over {len(seeds)} training seed(s) '
        f'({", ".join(map(str, seeds))}); prior recovery r: Pearson '
        'correlation of the per-class mean NPE estimate with the log class '
        'frequency on the training set. '
        f'{result["wall_seconds"] / 60:.1f} min with {result["workers"]} '
        f'worker process(es) of one thread on {result["machine"]["cpu_count"]}'
        f' CPU cores (load average {load} at start, end).' +
        (f' Not run (no demo config): {", ".join(missing)}.' if missing else ''
         ))
    if 'provenance' in result:
        lines += ['', provenance_line(result)]
    return '\n'.join(lines) + '\n'


BEGIN = '<!-- accuracy_study:begin (benchmarks/accuracy_study.py) -->'
END = '<!-- accuracy_study:end -->'


def doc_block(page: str) -> str:
    """The text between the study markers of a Markdown page."""
    text = open(page).read()
    if BEGIN not in text or END not in text:
        raise ValueError(f'{page} has no {BEGIN} ... {END} block')
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip('\n') + '\n'


def update_doc(page: str, table: str) -> None:
    """Put ``table`` between the page's study markers."""
    text = open(page).read()
    doc_block(page)
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(page, 'w') as f:
        f.write(head + BEGIN + '\n' + table + END + tail)


def _portable_path(path: str, out_dir: Optional[str] = None) -> str:
    """``path`` relative to the repository; outside it, relative to the
    study's ``--out-dir`` as ``<out-dir>/...`` (no machine's folders in a
    committed file)."""
    path = osp.abspath(path)
    if osp.commonpath([path, REPO]) == REPO:
        return osp.relpath(path, REPO)
    out = None if out_dir is None else osp.abspath(out_dir)
    if out is not None and osp.commonpath([path, out]) == out:
        return osp.join('<out-dir>', osp.relpath(path, out))
    return osp.join('<outside the repository>', osp.basename(path))


def _portable(result: dict, out_dir: Optional[str] = None) -> dict:
    """``result`` without this machine's paths (checkpoints dropped, data
    folders relative to the repository or to ``out_dir``)."""
    result = copy.deepcopy(result)
    for r in result['records']:
        r.pop('checkpoint', None)
    for key in ('data_root', 'selection_root', 'counts_json', 'det_root',
                'det_selection_root'):
        if key in result['settings']:
            result['settings'][key] = _portable_path(result['settings'][key],
                                                     out_dir)
    return result


# Label shift -----------------------------------------------------------------
#
# Predicting for the target prior instead of a uniform one (docs/user_guides/
# label_shift.md). DigitsLT: the balanced test split is cut per class into a
# labelled validation half (calibration, BBSE's confusion matrix) and a
# target pool half, which is subsampled to forward / backward shifted priors
# (the LabelShiftDataset protocol, applied to the cached logits: the same
# samples the wrapper keeps). Each model runs once over each half; every
# shift is evaluated on the cache. Synthetic segmentation: the selection set
# (the generator with another seed, long-tailed pixels) is the labelled
# validation set, the reported test split the target, one pixel prior for
# the whole split.

LS_CLS_METHODS = ('CE', 'LA post-hoc', 'NPE-LA K=16')
LS_SEG_METHODS = ('CE', 'LA post-hoc', 'NPE-LA linear')
LS_ROWS = (('model', 'as trained (uniform for NPE-LA / LA)'),
           ('em', 'EM + BCTS'), ('bbse', 'BBSE'),
           ('oracle', 'oracle pi_t + BCTS'), ('oracle_uncalibrated',
                                              'oracle pi_t, target_prior key'))
LS_DEFAULTS = dict(
    shift_rhos=[10, 50], directions=['forward', 'backward'], shift_seed=0)


def _halves(labels: np.ndarray) -> tuple:
    """Per class, alternate samples to the validation and the target half
    (the test split is drawn at random per class)."""
    val, pool = [], []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        val.append(idx[0::2])
        pool.append(idx[1::2])
    return np.sort(np.concatenate(val)), np.sort(np.concatenate(pool))


def _ls_shifts(job: dict) -> List[tuple]:
    """(name, rho, direction) of every evaluated target prior."""
    shifts = [('none', None, None)]
    for direction in job['directions']:
        for rho in job['shift_rhos']:
            shifts.append((f'{direction} {rho:g}', rho, direction))
    return shifts


def _ls_record(task, setting, method, seed, shift, result) -> dict:
    rows = {
        name: {
            k: v
            for k, v in row.items() if k != 'per_class'
        }
        for name, row in result['rows'].items()
    }
    est = {
        m: {
            k: e[k]
            for k in ('l1', 'error', 'converged', 'condition') if k in e
        }
        for m, e in result['estimates'].items()
    }
    return dict(
        task=task,
        setting=setting,
        method=method,
        seed=seed,
        shift=shift,
        rows=rows,
        estimates=est,
        calibration={
            k: result['calibration'].get(k)
            for k in ('temperature', 'ece_val_before', 'ece_val_after')
        })


def _ls_cls_evaluate(job: dict, method: str, config: str, ckpt: str,
                     opts: dict) -> List[dict]:
    """One pass over each half of the test split, then every shift on the
    cached logits."""
    import torch
    from mmengine.config import Config

    from mmnpe.analysis import (build_model, collect_logits,
                                evaluate_label_shift, load_config)
    from mmnpe.analysis.builder import (build_dataloader, build_dataset,
                                        classification_train_counts)
    from mmnpe.analysis.label_shift import logits_prior
    from mmnpe.cls.datasets import label_shift_indices
    cfg = load_config(config, opts)
    model = build_model(cfg, ckpt)
    loader = Config(cfg.test_dataloader.to_dict())
    full = build_dataset(loader.dataset)
    val_idx, pool_idx = _halves(full.get_gt_labels())
    caches = []
    for idx in (val_idx, pool_idx):
        part = copy.deepcopy(loader.to_dict())
        part['dataset']['indices'] = idx.tolist()
        caches.append(collect_logits(model, build_dataloader(part)))
    val, pool = caches
    # Counted over the training set, as ClassCountsHook gives them to
    # LongTailAccuracy (the held-out split's metainfo knows no rho).
    train_counts = classification_train_counts(cfg)
    counts = torch.tensor(train_counts, dtype=torch.float64)
    # What the cached logits hold under, for the row of the target_prior
    # key's Bayes rule (uniform for NPE-LA / LA at full strength); a CE
    # model has no such key, so no such row.
    prior, note = logits_prior(model, counts / counts.sum())
    if method == CLS_CE:
        prior = None
    records = []
    for name, rho, direction in _ls_shifts(job):
        target = pool
        if rho is not None:
            keep, _ = label_shift_indices(pool.labels.numpy(),
                                          pool.num_classes, rho, direction,
                                          job['shift_seed'])
            target = pool.select(keep)
        result = evaluate_label_shift(
            target,
            val, ('em', 'bbse'),
            'bcts',
            train_counts=train_counts,
            logits_prior=prior,
            logits_prior_note=note)
        records.append(
            _ls_record('cls', f'DigitsLT rho={job["rho"]:g}', method,
                       job['seed'], name, result))
    return records


def ls_cls_chain(job: dict) -> List[dict]:
    """CE and NPE-LA (K=16) trained for one training rho and seed; CE,
    post-hoc LA on it and NPE-LA evaluated under every shift."""
    out_dir = osp.join(job['out_dir'], 'label_shift', f'cls_r{job["rho"]:g}',
                       f's{job["seed"]}')
    records = []
    ce_ckpt = None
    for method in ('CE', 'NPE-LA K=16'):
        if method == 'NPE-LA K=16' and method not in job['methods']:
            continue
        config = _config(CLS_METHODS[method][0])
        opts = _cls_options(job, 'scratch')
        tag = method.lower().replace(' ', '-').replace('=', '')
        work_dir = osp.join(out_dir, tag)
        runner = _runner(config, work_dir,
                         f'ls_cls_r{job["rho"]:g}_s{job["seed"]}_{tag}', opts)
        runner.train()
        ckpt = osp.join(work_dir, f'epoch_{runner.epoch}.pth')
        del runner
        if method == 'CE':
            ce_ckpt = ckpt
        if method in job['methods']:
            records += _ls_cls_evaluate(job, method, config, ckpt, opts)
    if 'LA post-hoc' in job['methods']:
        config = _config(CLS_METHODS['LA post-hoc'][0])
        records += _ls_cls_evaluate(job, 'LA post-hoc', config, ce_ckpt,
                                    _cls_options(job, 'posthoc'))
    return records


def ls_seg_chain(job: dict) -> List[dict]:
    """CE, post-hoc LA on it and NPE-LA (linear PEM, alpha = 1) on the
    synthetic set: the selection set calibrates, the test split is the
    target."""
    from mmnpe.analysis import label_shift
    seed = job['seed']
    work = osp.join(job['out_dir'], 'label_shift', 'seg', f's{seed}')
    setting = 'synthetic seg'
    opts = _seg_train_options(job, job['seg_iters'], poly=True)
    runner = _runner(
        _config(SEG_BASE), osp.join(work, 'ce'), f'ls_seg_s{seed}_ce', opts)
    runner.train()
    base_ckpt = osp.join(work, 'ce', f'iter_{runner.iter}.pth')
    del runner
    evaluated = []
    if 'CE' in job['methods']:
        evaluated.append(('CE', _config(SEG_BASE), base_ckpt, opts))
    if 'LA post-hoc' in job['methods']:
        la_opts = _common(seed)
        la_opts.update(NO_VAL)
        la_opts.update(_seg_data(job, job['data_root']))
        la_opts.update({
            'model.class_counts': job['counts_json'],
            'model.tau': 1.0
        })
        evaluated.append(('LA post-hoc', _config(SEG_LA), base_ckpt, la_opts))
    if 'NPE-LA linear' in job['methods']:
        npe_opts = _seg_train_options(job, job['seg_pem_iters'], poly=False)
        npe_opts.update({'load_from': base_ckpt, 'model.scale_factor': 1.0})
        work_dir = osp.join(work, 'npe_linear')
        runner = _runner(
            _config(SEG_NPE), work_dir, f'ls_seg_s{seed}_npe', npe_opts)
        runner.train()
        ckpt = osp.join(work_dir, f'iter_{runner.iter}.pth')
        del runner
        evaluated.append(('NPE-LA linear', _config(SEG_NPE), ckpt, npe_opts))
    records = []
    for method, config, ckpt, method_opts in evaluated:
        result = label_shift(
            config,
            ckpt,
            val_split='val',
            target_split='test',
            max_pixels=None,
            cfg_options=_selection_options(job, method_opts))
        records.append(
            _ls_record('seg', setting, method, seed, 'val pixels', result))
    return records


def ls_plan(settings: dict, out_dir: str) -> List[tuple]:
    jobs = []
    for seed in settings['seeds']:
        if settings['ls_seg_methods']:
            jobs.append(('ls_seg_chain',
                         dict(
                             seed=seed,
                             out_dir=out_dir,
                             methods=settings['ls_seg_methods'],
                             seg_iters=settings['seg_iters'],
                             seg_pem_iters=settings['seg_pem_iters'],
                             data_root=settings['data_root'],
                             selection_root=settings['selection_root'],
                             counts_json=settings['counts_json'])))
    for rho in settings['rhos']:
        for seed in settings['seeds']:
            if settings['ls_cls_methods']:
                jobs.append(('ls_cls_chain',
                             dict(
                                 rho=rho,
                                 seed=seed,
                                 out_dir=out_dir,
                                 methods=settings['ls_cls_methods'],
                                 cls_epochs=settings['cls_epochs'],
                                 cls_batch=settings['cls_batch'],
                                 shift_rhos=settings['shift_rhos'],
                                 directions=settings['directions'],
                                 shift_seed=settings['shift_seed'])))
    return jobs


def _run_jobs(jobs: List[tuple], workers: int) -> List[dict]:
    """Runs ``(name, job)`` pairs in this process (``workers <= 1``, one
    torch thread, as each worker has: the same arithmetic either way) or in
    ``workers`` spawned processes, failing fast on the first error, and
    returns the records in the jobs' order."""
    records = []
    if workers <= 1:
        import torch

        import mmnpe  # noqa: F401
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for name, job in jobs:
                records += _call(name, job)
        finally:
            torch.set_num_threads(threads)
        return records
    ctx = get_context('spawn')
    with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {
            pool.submit(_call, name, job): i
            for i, (name, job) in enumerate(jobs)
        }
        done = {}
        for future in as_completed(futures):
            if future.exception() is not None:
                # Fail fast: the jobs not started yet are dropped.
                pool.shutdown(wait=False, cancel_futures=True)
                raise future.exception()
            done[futures[future]] = future.result()
    for i in range(len(jobs)):
        records += done[i]
    return records


def run_label_shift_study(settings: dict,
                          out_dir: str,
                          workers: int = 1) -> dict:
    """The label-shift part of the study alone."""
    settings = copy.deepcopy(settings)
    os.makedirs(out_dir, exist_ok=True)
    start = time.time()
    load_start = os.getloadavg()
    if settings['ls_seg_methods']:
        # prepare_data reads the segmentation methods from seg_methods.
        prepared = dict(settings, seg_methods=settings['ls_seg_methods'])
        prepare_data(prepared, out_dir)
        settings.update({
            k: prepared[k]
            for k in ('data_root', 'selection_root', 'counts_json',
                      'seg_train_pixels', 'seg_classes')
        })
    records = _run_jobs(ls_plan(settings, out_dir), workers)
    return dict(
        settings=settings,
        records=records,
        wall_seconds=round(time.time() - start, 1),
        workers=workers,
        load_average_start=load_start,
        load_average_end=os.getloadavg(),
        machine=machine())


def _ls_values(records: List[dict], key: tuple) -> List[float]:
    out = []
    for r in records:
        node = r
        for k in key:
            node = node.get(k) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            out.append(node)
    return out


def _ls_cell(records: List[dict], key: tuple, num_seeds: int) -> str:
    """Mean ± std, with how many seeds gave a value when not all did (BBSE
    refuses a singular confusion matrix)."""
    values = _ls_values(records, key)
    cell = _mean_std(values)
    if values and len(values) < num_seeds:
        cell += f' ({len(values)}/{num_seeds} seeds)'
    return cell


def _ls_rows(method: str) -> List[tuple]:
    # A stock CE model has no target_prior key.
    return [(row, label) for row, label in LS_ROWS
            if not (method == 'CE' and row == 'oracle_uncalibrated')]


def ls_markdown(result: dict) -> str:
    """The label-shift tables (mean ± sample std over seeds)."""
    s = result['settings']
    records = result['records']
    n = len(s['seeds'])
    lines = []
    cls = [r for r in records if r['task'] == 'cls']
    for setting in dict.fromkeys(r['setting'] for r in cls):
        rs = [r for r in cls if r['setting'] == setting]
        shifts = list(dict.fromkeys(r['shift'] for r in rs))
        lines += [
            f'**{setting}, label shift** (top-1 % on the target half of the '
            'test split, 25 images per class before the shift; the other '
            'half, balanced, calibrates; NPE-LA with 16 PEMs)', '',
            '| model | prediction | ' + ' | '.join(shifts) + ' |',
            '|---|---|' + '---|' * len(shifts)
        ]
        methods = list(dict.fromkeys(r['method'] for r in rs))
        for method in methods:
            for row, label in _ls_rows(method):
                cells = [
                    _ls_cell([
                        r for r in rs
                        if r['method'] == method and r['shift'] == sh
                    ], ('rows', row, 'top1'), n) for sh in shifts
                ]
                lines.append(f'| {method} | {label} | ' + ' | '.join(cells) +
                             ' |')
        lines += [
            '', f'L1 error of the estimated target prior, {setting}:', '',
            '| model | estimator | ' + ' | '.join(shifts) + ' |',
            '|---|---|' + '---|' * len(shifts)
        ]
        for method in methods:
            for m, label in (('em', 'EM + BCTS'), ('bbse', 'BBSE')):
                cells = [
                    _ls_cell([
                        r for r in rs
                        if r['method'] == method and r['shift'] == sh
                    ], ('estimates', m, 'l1'), n) for sh in shifts
                ]
                lines.append(f'| {method} | {label} | ' + ' | '.join(cells) +
                             ' |')
        lines.append('')
    seg = [r for r in records if r['task'] == 'seg']
    if seg:
        lines += [
            '**synthetic seg, label shift** (the test split\'s own '
            'long-tailed pixel prior, estimated once for the whole split; '
            'the selection set, long-tailed too, calibrates)', '',
            '| model | prediction | aAcc | mIoU | mAcc | prior L1 |',
            '|---|---|---|---|---|---|'
        ]
        for method in dict.fromkeys(r['method'] for r in seg):
            rs = [r for r in seg if r['method'] == method]
            for row, label in _ls_rows(method):
                cells = [
                    _ls_cell(rs, ('rows', row, k), n)
                    for k in ('aAcc', 'mIoU', 'mAcc')
                ]
                l1 = (
                    _ls_cell(rs, ('estimates', row,
                                  'l1'), n) if row in ('em', 'bbse') else '')
                lines.append(f'| {method} | {label} | ' + ' | '.join(cells) +
                             f' | {l1} |')
        converged = sum(
            bool(r['estimates'].get('em', {}).get('converged')) for r in seg)
        singular = sum('error' in r['estimates'].get('bbse', {}) for r in seg)
        lines += [
            '', f'EM reached its tolerance in {converged} of {len(seg)} '
            'segmentation runs (1000 iterations at most); BBSE refused a '
            f'singular validation confusion matrix in {singular} of '
            f'{len(seg)}.', ''
        ]
    load = ', '.join(f'{a:.1f}' for a in (result['load_average_start'][0],
                                          result['load_average_end'][0]))
    lines.append(
        f'Mean ± sample std over {n} training seed(s) '
        f'({", ".join(map(str, s["seeds"]))}); shifted targets drawn with '
        f'seed {s["shift_seed"]}; ResNet-32 {s["cls_epochs"]} epochs, '
        f'UNet-tiny + FCN {s["seg_iters"]} iterations (PEM '
        f'{s["seg_pem_iters"]}); "(k/N seeds)": BBSE refused a singular '
        'confusion matrix in the others. '
        f'{result["wall_seconds"] / 60:.1f} min with '
        f'{result["workers"]} worker process(es) of one thread on '
        f'{result["machine"]["cpu_count"]} CPU cores (load average {load} at '
        'start, end).')
    if 'provenance' in result:
        lines += ['', provenance_line(result)]
    return '\n'.join(lines) + '\n'


def label_shift_main(args: argparse.Namespace,
                     argv: Optional[List[str]] = None) -> dict:
    """``--label-shift``: run only the label-shift part."""
    settings = dict(
        FULL,
        **LS_DEFAULTS,
        seeds=args.seeds,
        rhos=args.rhos,
        ls_cls_methods=args.ls_cls_methods,
        ls_seg_methods=args.ls_seg_methods,
        cls_epochs=args.cls_epochs,
        seg_iters=args.seg_iters,
        seg_pem_iters=args.seg_pem_iters,
        seg_num_train=args.seg_num_train,
        seg_num_val=args.seg_num_val)
    if args.shift_rhos:
        settings['shift_rhos'] = args.shift_rhos
    prov = provenance(argv)  # the code as the run starts
    result = run_label_shift_study(settings, osp.abspath(args.out_dir),
                                   args.workers)
    result['provenance'] = prov
    table = ls_markdown(result)
    with open(args.ls_json, 'w') as f:
        json.dump(_portable(result, args.out_dir), f, indent=1)
        f.write('\n')
    with open(args.ls_md, 'w') as f:
        f.write(table)
    print(table)
    print(f'wrote {args.ls_md} and {args.ls_json}', file=sys.stderr)
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='work_dirs/accuracy_study')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--seeds', type=int, nargs='+', default=FULL['seeds'])
    parser.add_argument('--rhos', type=float, nargs='+', default=FULL['rhos'])
    parser.add_argument(
        '--cls-methods', nargs='*', default=FULL['cls_methods'])
    parser.add_argument(
        '--seg-methods', nargs='*', default=FULL['seg_methods'])
    parser.add_argument(
        '--det-methods',
        nargs='*',
        default=None,
        help='detection methods (default: all when mmdet is installed)')
    parser.add_argument('--det-iters', type=int, default=FULL['det_iters'])
    parser.add_argument(
        '--det-pem-iters', type=int, default=FULL['det_pem_iters'])
    parser.add_argument(
        '--det-num-train', type=int, default=FULL['det_num_train'])
    parser.add_argument(
        '--det-val-per-class', type=int, default=FULL['det_val_per_class'])
    parser.add_argument('--cls-epochs', type=int, default=FULL['cls_epochs'])
    parser.add_argument('--seg-iters', type=int, default=FULL['seg_iters'])
    parser.add_argument(
        '--seg-pem-iters', type=int, default=FULL['seg_pem_iters'])
    parser.add_argument(
        '--seg-num-train', type=int, default=FULL['seg_num_train'])
    parser.add_argument('--seg-num-val', type=int, default=FULL['seg_num_val'])
    parser.add_argument(
        '--md',
        default=osp.join(REPO, 'benchmarks', 'accuracy_study.md'),
        help='classification and segmentation: markdown table to write '
        '(written only when those methods run)')
    parser.add_argument(
        '--json',
        default=osp.join(REPO, 'benchmarks', 'accuracy_study.json'),
        help='classification and segmentation: every run, as JSON')
    parser.add_argument(
        '--det-md',
        default=osp.join(REPO, 'benchmarks', 'detection_study.md'),
        help='detection: markdown table to write (its own file: --md '
        'holds classification and segmentation)')
    parser.add_argument(
        '--det-json',
        default=osp.join(REPO, 'benchmarks', 'detection_study.json'),
        help='detection: every run, as JSON')
    parser.add_argument(
        '--doc',
        help='also copy the classification and segmentation table into this '
        'Markdown page, between its accuracy_study markers (docs/results.md)')
    parser.add_argument(
        '--label-shift',
        action='store_true',
        help='run only the label-shift part (writes --ls-md / --ls-json)')
    parser.add_argument(
        '--ls-cls-methods',
        nargs='*',
        default=list(LS_CLS_METHODS),
        help='label shift: classification models')
    parser.add_argument(
        '--ls-seg-methods',
        nargs='*',
        default=list(LS_SEG_METHODS),
        help='label shift: segmentation models')
    parser.add_argument(
        '--shift-rhos',
        type=float,
        nargs='+',
        help='label shift: rho of the shifted targets (default 10 50)')
    parser.add_argument(
        '--ls-md',
        default=osp.join(REPO, 'benchmarks', 'label_shift_study.md'),
        help='label shift: markdown table to write')
    parser.add_argument(
        '--ls-json',
        default=osp.join(REPO, 'benchmarks', 'label_shift_study.json'),
        help='label shift: every run, as JSON')
    args = parser.parse_args(argv)
    for flag, allowed in (('ls_cls_methods', LS_CLS_METHODS),
                          ('ls_seg_methods', LS_SEG_METHODS)):
        for m in getattr(args, flag):
            if m not in allowed:
                parser.error(f'--{flag.replace("_", "-")} must be among '
                             f'{list(allowed)}, got {m!r}')
    for m in args.cls_methods:
        if m not in CLS_METHODS:
            parser.error(f'--cls-methods must be among {list(CLS_METHODS)}, '
                         f'got {m!r}')
    for m in args.seg_methods:
        if m not in SEG_METHODS:
            parser.error(f'--seg-methods must be among {list(SEG_METHODS)},'
                         f' got {m!r}')
    if args.det_methods is None:
        import importlib.util
        has_mmdet = importlib.util.find_spec('mmdet') is not None
        args.det_methods = FULL['det_methods'] if has_mmdet else []
    for m in args.det_methods:
        if m not in DET_METHODS:
            parser.error(f'--det-methods must be among {list(DET_METHODS)},'
                         f' got {m!r}')
    return args


# Each study part writes its own files: (tasks, markdown flag, JSON flag).
PARTS = ((('cls', 'seg'), 'md', 'json'), (('det', ), 'det_md', 'det_json'))


def main(argv=None) -> dict:
    """Run the study; each part that ran (classification and segmentation,
    detection) writes its own markdown and JSON, with the commit, command
    and machine. Returns the whole result."""
    args = parse_args(argv)
    if args.label_shift:
        return label_shift_main(args, argv)
    settings = dict(
        FULL,
        seeds=args.seeds,
        rhos=args.rhos,
        cls_methods=args.cls_methods,
        seg_methods=args.seg_methods,
        det_methods=args.det_methods,
        det_iters=args.det_iters,
        det_pem_iters=args.det_pem_iters,
        det_num_train=args.det_num_train,
        det_val_per_class=args.det_val_per_class,
        cls_epochs=args.cls_epochs,
        seg_iters=args.seg_iters,
        seg_pem_iters=args.seg_pem_iters,
        seg_num_train=args.seg_num_train,
        seg_num_val=args.seg_num_val)
    prov = provenance(argv)  # the code as the run starts
    result = run_study(settings, osp.abspath(args.out_dir), args.workers)
    result['provenance'] = prov
    ran = dict(
        cls=bool(settings['cls_methods']),
        seg=bool(settings['seg_methods']),
        det=bool(settings['det_methods']))
    for tasks, md_flag, json_flag in PARTS:
        if not any(ran[t] for t in tasks):
            continue  # another study's files stay as they are
        part = dict(
            result,
            records=[r for r in result['records'] if r['task'] in tasks])
        table = markdown(part)
        md_file, json_file = getattr(args, md_flag), getattr(args, json_flag)
        with open(json_file, 'w') as f:
            json.dump(_portable(part, args.out_dir), f, indent=1)
            f.write('\n')
        with open(md_file, 'w') as f:
            f.write(table)
        if args.doc and 'cls' in tasks:
            update_doc(args.doc, table)
        print(table)
        print(f'wrote {md_file} and {json_file}', file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
