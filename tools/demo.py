"""The embedded demo (`make demo`): NPE-LA against its baseline on data that
ships with the repo's code or its dependencies.

Segmentation: writes the synthetic long-tailed set and its pixel counts (the
code of ``tools/analysis/class_counts.py``), trains the small stock segmentor
of ``configs/demo/`` with CE, trains a linear PEM on it with the backbone and
decode head frozen, fine-tunes its decode head with Balanced Softmax (backbone
frozen), evaluates baseline, post-hoc LA and NPE-LA at two scale factors and
Balanced Softmax with mmseg's IoU metric, prints and saves the table, and
draws a side-by-side PNG of a few validation images; the PEM's prior-recovery
scatter and its one-pass scale-factor sweep curve (``seg_prior_recovery.png``,
``seg_scale_sweep.png``, with their JSON).

Classification: trains ResNet-32 on DigitsLT (scikit-learn's real digits,
long-tailed) with CE, Balanced Softmax and NPE-LA (1 and 16 PEMs), tests
post-hoc LA on the CE checkpoint, prints top-1, balanced and Many/Medium/Few
accuracy and the learned estimate next to log frequency; the prior-recovery
scatter of the 1-PEM model (``cls_prior_recovery.png``).

Detection (where mmdet is installed): writes a synthetic long-tailed set in
LVIS v1 format, trains a small Faster R-CNN with CE, repeat-factor sampling
and Balanced Sigmoid, tests post-hoc LA and NPE-LA (a PEM on the frozen CE
detector, two alphas) on the CE checkpoint, prints mmdet's LVISMetric AP,
AP_r, AP_c, AP_f, the learned estimate next to the log instance frequency,
and draws detections (``det_comparison.png``).

Everything runs through the same configs, registry components and
``Runner`` a user would use with ``tools/train.py`` / ``tools/test.py``.
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_BASELINE = osp.join(REPO,
                        'configs/demo/fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_NPE = osp.join(REPO,
                   'configs/demo/npe_fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_LA = osp.join(
    REPO, 'configs/demo/la-posthoc_fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_BS = osp.join(
    REPO, 'configs/demo/balanced-softmax_fcn_unet-tiny_synthetic-lt-64x64.py')
SCALES = (1.0, 0.2)
# The curve tools/analysis/scale_sweep.py draws for the demo's PEM.
SWEEP_SCALES = (0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
# Trained configs; 'LA post-hoc' tests the CE run's last checkpoint instead.
CLS_CONFIGS = {
    'CE':
    osp.join(REPO, 'configs/demo/ce_resnet32_digits-lt.py'),
    'LA post-hoc':
    osp.join(REPO, 'configs/demo/la-posthoc_resnet32_digits-lt.py'),
    'Balanced Softmax':
    osp.join(REPO, 'configs/demo/balanced-softmax_resnet32_digits-lt.py'),
    'NPE-LA K=1':
    osp.join(REPO, 'configs/demo/npe-la-k1_resnet32_digits-lt.py'),
    'NPE-LA K=16':
    osp.join(REPO, 'configs/demo/npe-la-k16_resnet32_digits-lt.py'),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='mmnpe demo')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/synthetic_lt')
    parser.add_argument(
        '--num-vis', type=int, default=4, help='validation images to draw')
    parser.add_argument(
        '--only',
        choices=['seg', 'cls', 'det'],
        help='run one part of the demo')
    parser.add_argument(
        '--det-data-root',
        default='data/synthetic_lvis',
        help='where the detection part writes its LVIS-format set')
    return parser.parse_args()


def _runner(config: str, work_dir: str, name: str, **options) -> Runner:
    """A Runner for ``config`` with ``--cfg-options``-style overrides."""
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.merge_from_dict(options)
    return Runner.from_cfg(cfg)


def _analysis_pngs(config: str,
                   checkpoint: str,
                   options: dict,
                   work_dir: str,
                   prefix: str,
                   scales=None) -> None:
    """What tools/analysis/prior_recovery.py (and scale_sweep.py, given
    ``scales``) write for a trained NPE model: PNG and JSON, seconds."""
    from mmnpe.analysis import (dump_json, plot_prior_recovery,
                                plot_scale_sweep, prior_recovery, scale_sweep)
    result = prior_recovery(config, checkpoint, cfg_options=options)
    out = osp.join(work_dir, f'{prefix}_prior_recovery')
    plot_prior_recovery(result, out + '.png')
    dump_json(result, out + '.json')
    if scales:
        result = scale_sweep(
            config, checkpoint, list(scales), split='val', cfg_options=options)
        out = osp.join(work_dir, f'{prefix}_scale_sweep')
        plot_scale_sweep(result, out + '.png')
        dump_json(result, out + '.json')


def _floats(metrics: dict) -> dict:
    """Metric values as plain Python numbers (json-serialisable)."""
    return {
        k: v.tolist() if hasattr(v, 'tolist') else v
        for k, v in metrics.items()
    }


def _predict(runner: Runner, num: int) -> List:
    """Predictions of the runner's model on the first ``num`` test images."""
    samples = []
    runner.model.eval()
    with torch.no_grad():
        for batch in runner.test_dataloader:
            samples += runner.model.test_step(batch)
            if len(samples) >= num:
                break
    return samples[:num]


def _draw(rows: Dict[str, List], data_root: str, meta: dict,
          out_file: str) -> None:
    """Image | ground truth | one column per setting, one row per image."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmseg.visualization import SegLocalVisualizer

    vis = SegLocalVisualizer(name=f'demo_{time.time()}', alpha=1.0)
    # By keyword: mmseg 1.2.2's __init__ passes (palette, classes) to
    # set_dataset_meta(classes, palette) in swapped order.
    vis.set_dataset_meta(classes=meta['classes'], palette=meta['palette'])
    names = list(rows)
    num = len(rows[names[0]])
    fig, axes = plt.subplots(
        num,
        len(names) + 2,
        figsize=(2.2 * (len(names) + 2), 2.2 * num),
        squeeze=False)
    for i in range(num):
        sample = rows[names[0]][i]
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        panels = [('image', image)]
        vis.add_datasample(
            'gt',
            image,
            sample,
            draw_gt=True,
            draw_pred=False,
            with_labels=False)
        panels.append(('ground truth', vis.get_image()))
        for name in names:
            vis.add_datasample(
                name,
                image,
                rows[name][i],
                draw_gt=False,
                draw_pred=True,
                with_labels=False)
            panels.append((name, vis.get_image()))
        for ax, (title, panel) in zip(axes[i], panels):
            ax.imshow(panel, interpolation='nearest')
            ax.set_title(title, fontsize=8)
            ax.axis('off')
    handles = [
        matplotlib.patches.Patch(color=np.array(c) / 255., label=n)
        for n, c in zip(meta['classes'], meta['palette'])
    ]
    fig.legend(
        handles=handles, loc='lower center', ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def _table(results: Dict[str, dict], classes) -> str:
    cols = ['mIoU', 'mDice', 'mAcc', 'aAcc']
    lines = [
        '| setting | ' + ' | '.join(cols) + ' | ' +
        ' | '.join(f'IoU {c}' for c in classes) + ' | ' +
        ' | '.join(f'Acc {c}' for c in classes) + ' |'
    ]
    lines.append('|' + '---|' * (1 + len(cols) + 2 * len(classes)))
    for name, m in results.items():
        cells = [f'{m[c]:.2f}' for c in cols]
        cells += [f'{m[f"IoU.{c}"]:.2f}' for c in classes]
        cells += [f'{m[f"Acc.{c}"]:.2f}' for c in classes]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def seg_demo(args: argparse.Namespace) -> None:
    from mmnpe.seg import generate_synthetic_lt

    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    counts = generate_synthetic_lt(args.data_root)
    train = counts['train']
    print_log(
        'synthetic long-tailed set: training pixels per class '
        f'{train.tolist()} (max/min = {train.max() / train.min():.0f})',
        logger='current')

    data = {
        f'{split}_dataloader.dataset.data_root': args.data_root
        for split in ('train', 'val', 'test')
    }
    # Pixels per class through the baseline config, as
    # tools/analysis/class_counts.py CONFIG --out FILE writes them.
    from mmnpe.engine import (build_counting_dataset, count_dataset_classes,
                              write_class_counts)
    count_cfg = Config.fromfile(SEG_BASELINE)
    count_cfg.merge_from_dict(data)
    counts_json = osp.join(args.data_root, 'pixel_counts.json')
    write_class_counts(
        count_dataset_classes(build_counting_dataset(count_cfg)), counts_json)

    base_dir = osp.join(work_dir, 'baseline')
    baseline = _runner(SEG_BASELINE, base_dir, 'demo_baseline', **data)
    baseline.train()
    base_ckpt = osp.join(base_dir, f'iter_{baseline.iter}.pth')

    npe_dir = osp.join(work_dir, 'npe')
    npe = _runner(SEG_NPE, npe_dir, 'demo_npe', load_from=base_ckpt, **data)
    npe.train()
    npe_ckpt = osp.join(npe_dir, f'iter_{npe.iter}.pth')
    _analysis_pngs(SEG_NPE, npe_ckpt, data, work_dir, 'seg', SWEEP_SCALES)

    bs_dir = osp.join(work_dir, 'balanced_softmax')
    bs = _runner(
        SEG_BS,
        bs_dir,
        'demo_balanced_softmax',
        load_from=base_ckpt,
        **{'model.decode_head.loss_decode.class_counts': counts_json},
        **data)
    bs.train()
    bs_ckpt = osp.join(bs_dir, f'iter_{bs.iter}.pth')

    results, preds = {}, {}
    tester = _runner(
        SEG_BASELINE,
        osp.join(work_dir, 'test_baseline'),
        'demo_test_baseline',
        load_from=base_ckpt,
        **data)
    results['baseline (CE)'] = _floats(tester.test())
    preds['baseline (CE)'] = _predict(tester, args.num_vis)
    for tau in SCALES:
        name = f'LA post-hoc tau={tau:g}'
        tester = _runner(
            SEG_LA,
            osp.join(work_dir, f'test_la_t{tau:g}'),
            f'demo_test_la_t{tau:g}',
            load_from=base_ckpt,
            **{
                'model.tau': tau,
                'model.class_counts': counts_json
            },
            **data)
        results[name] = _floats(tester.test())
        preds[name] = _predict(tester, args.num_vis)
    tester = _runner(
        SEG_BS,
        osp.join(work_dir, 'test_balanced_softmax'),
        'demo_test_balanced_softmax',
        load_from=bs_ckpt,
        **{'model.decode_head.loss_decode.class_counts': counts_json},
        **data)
    results['Balanced Softmax'] = _floats(tester.test())
    preds['Balanced Softmax'] = _predict(tester, args.num_vis)
    for scale in SCALES:
        name = f'NPE-LA alpha={scale:g}'
        tester = _runner(
            SEG_NPE,
            osp.join(work_dir, f'test_npe_s{scale:g}'),
            f'demo_test_npe_s{scale:g}',
            load_from=npe_ckpt,
            **{'model.scale_factor': scale},
            **data)
        results[name] = _floats(tester.test())
        preds[name] = _predict(tester, args.num_vis)

    meta = tester.test_dataloader.dataset.metainfo
    table = _table(results, meta['classes'])
    with open(osp.join(work_dir, 'seg_results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'seg_results.json'), 'w') as f:
        json.dump(
            dict(train_pixels=train.tolist(), results=results), f, indent=2)
    png = osp.join(work_dir, 'seg_comparison.png')
    _draw(preds, args.data_root,
          dict(classes=meta['classes'], palette=meta['palette']), png)
    print('\nSegmentation demo: synthetic long-tailed set, training pixels '
          f'per class {train.tolist()}\n')
    print(table)
    print(f'\nSaved {osp.join(work_dir, "seg_results.md")}, '
          f'seg_results.json and {png} ({time.time() - start:.0f} s)')


def _mean_estimate(runner: Runner) -> np.ndarray:
    """NPE estimate eta(h), centred, averaged over the test images."""
    model = runner.model.eval()
    etas = []
    with torch.no_grad():
        for batch in runner.test_dataloader:
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data['inputs'])
            head = model.head
            etas.append(head.estimate_prior(head.pre_logits(feats)))
    return torch.cat(etas).mean(dim=0).numpy()


def cls_demo(args: argparse.Namespace) -> None:
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    results, estimates = {}, {}
    counts = None
    ce_ckpt = None
    for name, config in CLS_CONFIGS.items():
        tag = name.lower().replace(' ', '').replace('=', '')
        if name == 'LA post-hoc':  # no training: the CE checkpoint
            runner = _runner(
                config,
                osp.join(work_dir, f'cls_{tag}'),
                f'demo_cls_{tag}',
                load_from=ce_ckpt)
        else:
            runner = _runner(config, osp.join(work_dir, f'cls_{tag}'),
                             f'demo_cls_{tag}')
            runner.train()
        if name == 'CE':
            ce_ckpt = osp.join(runner.work_dir, f'epoch_{runner.epoch}.pth')
        # The last checkpoint is the one reported (no best-epoch pick).
        metrics = runner.test()
        results[name] = {
            k.split('/', 1)[1]: v
            for k, v in _floats(metrics).items()
        }
        # The training images per class ClassCountsHook gave the metric (the
        # balanced test split carries no rho).
        counts = runner.test_evaluator.metrics[0].class_counts
        if getattr(runner.model.head, 'num_pems', 0):
            estimates[name] = _mean_estimate(runner)
        if name == 'NPE-LA K=1':
            _analysis_pngs(
                config, osp.join(runner.work_dir, f'epoch_{runner.epoch}.pth'),
                {}, work_dir, 'cls')
    log_freq = np.log(np.asarray(counts, dtype=float))
    log_freq -= log_freq.mean()

    cols = ['top1', 'balanced', 'many', 'medium', 'few']
    lines = [
        '| method | ' + ' | '.join(cols) + ' |', '|' + '---|' * (len(cols) + 1)
    ]
    for name, m in results.items():
        cells = [f'{m[c]:.2f}' if c in m else 'n/a' for c in cols]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    table = '\n'.join(lines)
    est = [
        '| class | train images | log freq (centred) | ' +
        ' | '.join(f'eta {n}' for n in estimates) + ' |',
        '|' + '---|' * (3 + len(estimates))
    ]
    for c, n in enumerate(counts):
        est.append(f'| {c} | {n} | {log_freq[c]:+.2f} | ' +
                   ' | '.join(f'{e[c]:+.2f}'
                              for e in estimates.values()) + ' |')
    est_table = '\n'.join(est)
    with open(osp.join(work_dir, 'cls_results.md'), 'w') as f:
        f.write(table + '\n\n' + est_table + '\n')
    with open(osp.join(work_dir, 'cls_results.json'), 'w') as f:
        json.dump(
            dict(
                train_class_counts=counts,
                results=results,
                estimates={
                    k: v.tolist()
                    for k, v in estimates.items()
                }),
            f,
            indent=2)
    print('\nClassification demo: DigitsLT (scikit-learn digits, rho=50), '
          f'ResNet-32; training images per class {counts}\n')
    print(table)
    print('\nLearned NPE estimate (mean over test images) next to the log '
          'class frequency:\n')
    print(est_table)
    print(f'\nSaved {osp.join(work_dir, "cls_results.md")} and '
          f'cls_results.json ({time.time() - start:.0f} s)')


# Detection ------------------------------------------------------------------
DET_DEMO = osp.join(REPO, 'configs', 'demo')
DET_CE = osp.join(DET_DEMO, 'faster-rcnn_r18-tiny_fpn_synthetic-lvis.py')
DET_CONFIGS = {
    name: osp.join(DET_DEMO,
                   f'faster-rcnn_r18-tiny_fpn_{tag}synthetic-lvis.py')
    for name, tag in (('CE', ''), ('repeat-factor sampling', 'sample1e-1_'),
                      ('Balanced Sigmoid', 'balanced-sigmoid_'),
                      ('LA post-hoc', 'la-posthoc_'), ('NPE-LA', 'npe_'))
}
DET_SCALES = (1.0, 0.5)
DET_COLS = ('AP', 'APr', 'APc', 'APf', 'AP50')


def det_point_at(cfg: Config, data_root: str) -> Config:
    """``cfg`` (a detection demo config) reading the LVIS-format set in
    ``data_root``: every (wrapped) data set and the evaluators."""
    from mmnpe.engine import pipeline_dataset_cfgs
    root = data_root.rstrip('/') + '/'
    for split in ('train', 'val', 'test'):
        for node in pipeline_dataset_cfgs(cfg[f'{split}_dataloader'].dataset):
            node.data_root = root
        if split != 'train':
            cfg[f'{split}_evaluator'].ann_file = (
                root + 'annotations/lvis_v1_val.json')
    return cfg


def _det_runner(config: str, work_dir: str, name: str, data_root: str,
                options: dict):
    """The Runner tools/train.py / tools/test.py build (input checks and
    exact resume included) for ``config`` on the set in ``data_root``."""
    from mmnpe.engine import build_runner
    cfg = det_point_at(Config.fromfile(config), data_root)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.launcher = 'none'
    cfg.merge_from_dict(options)
    return build_runner(cfg)


def _det_metrics(metrics: dict) -> dict:
    """LVISMetric's bbox numbers in percent (-1: the group is empty)."""
    out = {}
    for key, value in _floats(metrics).items():
        name = key.split('bbox_', 1)[-1]
        out[name] = value if value < 0 else round(100 * value, 1)
    return out


def _top_detections(pred, top_k: int) -> tuple:
    """The ``top_k`` highest-scoring detections of ``pred`` (boxes, labels,
    scores), whatever their scores.

    One score threshold does not suit every method: a correction that moves
    the foreground mass between confusable categories (NPE-LA, post-hoc LA)
    spreads it, so scores that suit CE fall under it and the column would
    stay empty. A fixed number per image shows what each method predicts.
    """
    order = pred.scores.argsort(descending=True)[:top_k]
    return pred.bboxes[order], pred.labels[order], pred.scores[order]


def _det_draw(rows: Dict[str, List],
              classes,
              out_file: str,
              top_k: int = 3) -> None:
    """Image with ground truth | one column per method, each with its
    ``top_k`` highest-scoring detections (the title says so)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(rows)
    num = len(rows[names[0]])
    fig, axes = plt.subplots(
        num,
        len(names) + 1,
        figsize=(2.4 * (len(names) + 1), 2.4 * num),
        squeeze=False)
    colours = plt.get_cmap('tab20')
    for i in range(num):
        sample = rows[names[0]][i]
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        panels = [
            ('ground truth', sample.gt_instances.bboxes.tensor if hasattr(
                sample.gt_instances.bboxes, 'tensor') else
             sample.gt_instances.bboxes, sample.gt_instances.labels, None)
        ]
        for name in names:
            panels.append(
                (f'{name}\n(top {top_k} per image)',
                 *_top_detections(rows[name][i].pred_instances, top_k)))
        for ax, (title, boxes, labels, scores) in zip(axes[i], panels):
            ax.imshow(image)
            for j, (box,
                    label) in enumerate(zip(boxes.tolist(), labels.tolist())):
                x1, y1, x2, y2 = box
                ax.add_patch(
                    plt.Rectangle((x1, y1),
                                  x2 - x1,
                                  y2 - y1,
                                  fill=False,
                                  color=colours(label % 20),
                                  linewidth=1.5))
                text = classes[label] if scores is None else (
                    f'{classes[label]} {float(scores[j]):.2f}')
                ax.text(
                    x1,
                    y1,
                    text,
                    fontsize=5,
                    color='white',
                    bbox=dict(facecolor=colours(label % 20), pad=0.5, lw=0))
            ax.set_title(title, fontsize=7)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def _det_mean_estimate(runner) -> np.ndarray:
    """NPE estimate eta of the RoI head's features of the ground-truth
    boxes, averaged over the test set's objects, (C, )."""
    from mmdet.structures.bbox import bbox2roi
    model = runner.model.eval()
    roi_head, etas = model.roi_head, []
    head = roi_head.bbox_head
    with torch.no_grad():
        for batch in runner.test_dataloader:
            data = model.data_preprocessor(batch, False)
            x = model.extract_feat(data['inputs'])
            rois = bbox2roi(
                [s.gt_instances.bboxes for s in data['data_samples']])
            feats = roi_head.bbox_roi_extractor(
                x[:roi_head.bbox_roi_extractor.num_inputs], rois)
            etas.append(
                head.estimate_prior(head._forward_with_feats(feats)[2]))
    return torch.cat(etas).mean(0).numpy()


def det_demo(args: argparse.Namespace) -> dict:
    """Detection: CE, repeat-factor sampling and Balanced Sigmoid trained on
    the synthetic LVIS-format set, post-hoc LA and NPE-LA (a PEM on the
    frozen CE detector) on the CE checkpoint; LVISMetric's AP, AP_r, AP_c,
    AP_f; a picture of detections."""
    start = time.time()
    # One thread: the small detector's convolutions gain little from a
    # second one, and on a busy 2-core machine oneDNN's spinning threads made
    # them tens of times slower (measured: 1.4 ms vs 75 ms per 3x3 conv).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _det_demo(args, start)
    finally:
        torch.set_num_threads(threads)


def _det_demo(args: argparse.Namespace, start: float) -> dict:
    from mmnpe.det import generate_synthetic_lvis
    from mmnpe.engine import build_counting_dataset, count_dataset_classes

    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    info = generate_synthetic_lvis(args.det_data_root)
    results, preds, timings = {}, {}, {}

    def run(name, config, tag, train=True, **options):
        t = time.time()
        # No validation inside the runs: the table is one test per model.
        options.update(val_dataloader=None, val_cfg=None, val_evaluator=None)
        runner = _det_runner(config, osp.join(work_dir, f'det_{tag}'),
                             f'demo_det_{tag}', args.det_data_root, options)
        if train:
            runner.train()
        results[name] = _det_metrics(runner.test())
        preds[name] = _predict(runner, args.num_vis)
        timings[name] = round(time.time() - t, 1)
        return runner

    ce = run('CE', DET_CE, 'ce')
    ce_ckpt = osp.join(ce.work_dir, f'iter_{ce.iter}.pth')
    run('repeat-factor sampling', DET_CONFIGS['repeat-factor sampling'], 'rfs')
    run('Balanced Sigmoid', DET_CONFIGS['Balanced Sigmoid'], 'bs')
    run('LA post-hoc tau=1',
        DET_CONFIGS['LA post-hoc'],
        'la',
        train=False,
        load_from=ce_ckpt)
    npe = None
    for scale in DET_SCALES:
        name = f'NPE-LA alpha={scale:g}'
        if npe is None:
            npe = run(
                name,
                DET_CONFIGS['NPE-LA'],
                'npe',
                load_from=ce_ckpt,
                **{'model.roi_head.bbox_head.scale_factor': scale})
            npe_ckpt = osp.join(npe.work_dir, f'iter_{npe.iter}.pth')
        else:
            run(name,
                DET_CONFIGS['NPE-LA'],
                f'npe_s{scale:g}',
                train=False,
                load_from=npe_ckpt,
                **{'model.roi_head.bbox_head.scale_factor': scale})
    count_cfg = det_point_at(Config.fromfile(DET_CE), args.det_data_root)
    # Instances per category as ClassCountsHook counts them for the losses.
    counts = count_dataset_classes(build_counting_dataset(count_cfg))
    eta = _det_mean_estimate(npe)
    log_freq = np.log(np.asarray(counts['counts'], dtype=float))
    log_freq -= log_freq.mean()
    lines = [
        '| method | ' + ' | '.join(f'AP{c[2:]}' if c != 'AP' else 'AP'
                                   for c in DET_COLS) + ' | seconds |',
        '|' + '---|' * (len(DET_COLS) + 2)
    ]
    for name, m in results.items():
        cells = [
            'n/a' if m.get(c, -1) < 0 else f'{m[c]:.1f}' for c in DET_COLS
        ]
        lines.append(f'| {name} | ' + ' | '.join(cells) +
                     f' | {timings[name]:.0f} |')
    table = '\n'.join(lines)
    est = [
        '| category | tag | train instances | log freq (centred) | eta |',
        '|---|---|---|---|---|'
    ]
    for c, name in enumerate(info['classes']):
        est.append(f'| {name} | {info["frequency"][c]} | '
                   f'{counts["counts"][c]} | {log_freq[c]:+.2f} | '
                   f'{eta[c]:+.2f} |')
    est_table = '\n'.join(est)
    tags = ' / '.join(
        f'{n}{t}' for n, t in zip(info['instance_counts'], info['frequency']))
    with open(osp.join(work_dir, 'det_results.md'), 'w') as f:
        f.write(table + '\n\n' + est_table + '\n')
    with open(osp.join(work_dir, 'det_results.json'), 'w') as f:
        json.dump(
            dict(
                train_instances=info['instance_counts'],
                train_images=info['image_counts'],
                frequency=info['frequency'],
                counted=counts['counts'],
                estimate=eta.tolist(),
                results=results,
                seconds=timings),
            f,
            indent=2)
    png = osp.join(work_dir, 'det_comparison.png')
    _det_draw(preds, info['classes'], png)
    print('\nDetection demo: synthetic LVIS-format set, Faster R-CNN '
          f'(ResNet-18/16, FPN), training instances per category {tags}\n')
    print(table)
    print('\nLearned NPE estimate (mean over the validation objects) next '
          'to the log instance frequency:\n')
    print(est_table)
    print(f'\nSaved {osp.join(work_dir, "det_results.md")}, '
          f'det_results.json and {png} ({time.time() - start:.0f} s)')
    return results


def main() -> None:
    args = parse_args()
    import mmnpe  # noqa: F401  (registers the components)
    if args.only in (None, 'seg'):
        seg_demo(args)
    if args.only in (None, 'cls'):
        cls_demo(args)
    if args.only in (None, 'det'):
        import importlib.util
        if importlib.util.find_spec('mmdet') is not None:
            det_demo(args)
        elif args.only == 'det':
            raise SystemExit('the detection demo needs mmdet: '
                             'pip install -e ".[det]"')
        else:
            print('\nDetection demo skipped: mmdet is not installed '
                  '(pip install -e ".[det]")')


if __name__ == '__main__':
    main()
