"""How cheap is NPE? Ratios measured side by side in one process on the CPU.

Each timing measure times A (the NPE variant) and B (its baseline)
interleaved with one thread, takes the ratio of medians over --reps paired
repetitions after warm-up, and prints an A/A control (B against a copy of
itself) beside it: the control's distance from 1.00 is the noise floor of
that line.

Memory measures (mem_*) report the peak tensor memory of one step of A and
of B, after a warm-up step (optimizer state exists, as in steady state):
the bytes of the tensors alive before the step (parameters, buffers,
gradients, optimizer state, inputs) plus the highest level that the
allocations made during the step reach, as PyTorch's CPU allocator reports
every allocation and free to its profiler. Deterministic; allocator
overhead, Python objects and the interpreter are not counted.

    python benchmarks/bench_npe.py [--reps 15] [--only cls_train ...]

Goals (benchmarks/README.md): cls_train <= 1.03, cls_fused 1.00 +- 0.01 with
identical argmax, seg_infer <= 1.02, seg_frozen <= 0.35; a sweep
of 11 scale factors <= 1.3x one ordinary evaluation (sweep_seg, sweep_cls);
label-shift estimation and adaptation on cached logits <= 0.05x one
evaluation (label_shift_cls, label_shift_seg);
det_infer <= 1.02 (NPE-LA's RoI head on the LVIS Mask R-CNN); det_frozen
<= 0.2 (the PEM iteration of NPETwoStageDetector on the frozen LVIS Mask
R-CNN / a stock training iteration); the det memory lines are reported
(docs/user_guides/detection.md). On
request only (--only, minutes of ResNet-50): lt_train, ResNet-50 step with K
PEMs / without at C = 1 000 and 8 142, K = 1 <= 1.02, K = 16 <= 1.05 and
<= 1.25; mem_lt_train, its memory by part; lt_fused 1.00 +- 0.02 with
identical argmax at C = 8 142 (docs/user_guides/classification_benchmarks.md).
"""
import argparse
import contextlib
import copy
import os
import os.path as osp
import statistics
import tempfile
import time

import torch

import mmnpe  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_ratio(fn_a, fn_b, fn_b2, reps: int, warmup: int = 2):
    """Median(A) / median(B) and the A/A control median(B2) / median(B).

    The three run interleaved, and their order rotates every repetition so
    that no one of them always runs first (a position bias that otherwise
    shows in the A/A control).
    """
    fns = [fn_a, fn_b, fn_b2]
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[], [], []]
    for rep in range(reps):
        for i in range(3):
            j = (i + rep) % 3
            times[j].append(_time(fns[j]))
    ta, tb, tb2 = (statistics.median(t) for t in times)
    return ta / tb, tb2 / tb, tb


def _tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if t is None or not torch.is_tensor(t):
            continue
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += key[1]
    return total


def _live_bytes(model, optimizer=None, inputs=()) -> int:
    """Bytes of the tensors a step starts with (shared storage once)."""
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += [p.grad for p in model.parameters()]
    if optimizer is not None:
        for state in optimizer.state.values():
            tensors += list(state.values())
    return _tensor_bytes(tensors + list(inputs))


def step_peak_bytes(fn) -> int:
    """Highest level of tensor memory allocated by ``fn()`` above what it
    started with, from the allocation / free events of the profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        fn()
    events = sorted((e.start_ns(), e.nbytes())
                    for e in p.profiler.kineto_results.events()
                    if e.name() == '[memory]')
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


def _mib(nbytes: int) -> str:
    return f'{nbytes / 2**20:.1f} MiB'


def _fresh(*models):
    """Deep copies of the models: every arm then holds memory allocated the
    same way (a model used as built measured ~2 % slower than its own deep
    copy here, which would bias the ratios)."""
    return [copy.deepcopy(m) for m in models]


def _cls_model(num_pems: int):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    head = dict(type='LinearClsHead', num_classes=100, in_channels=64)
    if num_pems:
        head = dict(
            type='NPEClsHead',
            num_classes=100,
            in_channels=64,
            num_pems=num_pems)
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='CifarResNet', depth=32),
            neck=dict(type='GlobalAveragePooling'),
            head=head))


def bench_cls_train(reps: int) -> str:
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    x = torch.randn(128, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 100) for i in range(128)]

    def step_fn(model):
        wrapper = OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

        def step():
            losses = model.loss(x, samples)
            wrapper.update_params(sum(losses.values()))

        return step

    npe, plain = _fresh(_cls_model(16).train(), _cls_model(0).train())
    a, b, b2 = step_fn(npe), step_fn(plain), step_fn(copy.deepcopy(plain))
    r, aa, base = paired_ratio(a, b, b2, reps)
    return (f'cls_train  ResNet-32 step, 16 PEMs / 0 PEMs (batch 128): '
            f'{r:.3f}  (A/A {aa:.3f}; baseline {base * 1e3:.0f} ms)  '
            'goal <= 1.03')


def bench_cls_fused(reps: int) -> str:
    import torch.nn as nn
    npe = _cls_model(16).eval()
    for p in npe.head.parameters():
        nn.init.normal_(p, std=0.1)
    fused = _cls_model(0).eval()
    fused.load_state_dict({
        k: v
        for k, v in npe.state_dict().items() if 'pems' not in k
    })
    fused.head.fc = npe.head.fuse()
    fused, plain, plain2 = _fresh(fused, *[_cls_model(0).eval()] * 2)
    x = torch.randn(256, 3, 32, 32)
    with torch.no_grad():
        same = torch.equal(
            fused(x, mode='tensor').argmax(1),
            npe(x, mode='tensor').argmax(1))
        r, aa, base = paired_ratio(lambda: fused(x, mode='tensor'),
                                   lambda: plain(x, mode='tensor'),
                                   lambda: plain2(x, mode='tensor'), reps)
    return (f'cls_fused  fused NPE-LA / plain classifier inference (batch '
            f'256): {r:.3f}  (A/A {aa:.3f}); identical argmax: {same}  '
            'goal 1.00 +- 0.01')


def _seg_models():
    from mmengine.config import Config
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs/npe/unet_stare_pem_fcn.py'))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    npe = revert_sync_batchnorm(MODELS.build(cfg.model))
    stock_cfg = copy.deepcopy(cfg.model)
    stock_cfg.type = 'EncoderDecoder'
    stock_cfg.pop('pem_head')
    stock_cfg.pop('scale_factor')
    stock = revert_sync_batchnorm(MODELS.build(stock_cfg))
    stock.load_state_dict(npe.state_dict(), strict=False)
    return _fresh(npe, stock, stock)


def bench_seg_infer(reps: int) -> str:
    npe, stock, stock2 = (m.eval() for m in _seg_models())
    for m in (npe, stock, stock2):
        m.test_cfg.mode = 'whole'
    x = torch.randn(1, 3, 256, 256)
    metas = [
        dict(
            img_shape=(256, 256),
            ori_shape=(256, 256),
            pad_shape=(256, 256),
            padding_size=[0, 0, 0, 0])
    ]
    with torch.no_grad():
        r, aa, base = paired_ratio(lambda: npe.inference(x, metas),
                                   lambda: stock.inference(x, metas),
                                   lambda: stock2.inference(x, metas), reps)
    return (f'seg_infer  NPEEncoderDecoder (linear PEM) / EncoderDecoder, '
            f'UNet whole 256x256: {r:.3f}  (A/A {aa:.3f}; baseline '
            f'{base * 1e3:.0f} ms)  goal <= 1.02')


def bench_seg_frozen(reps: int) -> str:

    from mmengine.optim import OptimWrapper

    from mmnpe.engine import FrozenBackboneHook

    frozen, full, full2 = _seg_models()
    runner = type('R', (), dict(model=frozen))()
    hook = FrozenBackboneHook()
    hook.before_train(runner)
    batch = _seg_batch()

    def step_fn(model, freeze=False):
        wrapper = OptimWrapper(
            torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                            lr=0.01))

        def step():
            model.train()
            if freeze:
                hook.before_train_iter(runner, 0)
            model.train_step(copy.deepcopy(batch), wrapper)

        return step

    r, aa, base = paired_ratio(
        step_fn(frozen, True), step_fn(full), step_fn(full2), reps, warmup=1)
    return (f'seg_frozen PEM iteration, backbone+heads frozen / full '
            f'fine-tuning, UNet STARE 4x128^2: {r:.3f}  (A/A {aa:.3f}; '
            f'baseline {base:.2f} s)  goal <= 0.35')


def _cls_train_step(model):
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    x = torch.randn(128, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 100) for i in range(128)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    wrapper = OptimWrapper(optimizer)

    def step():
        losses = model.loss(x, samples)
        wrapper.update_params(sum(losses.values()))

    return step, optimizer, (x, )


def _peak(model, step, optimizer=None, inputs=()) -> int:
    step()  # warm-up: optimizer state exists afterwards
    start = _live_bytes(model, optimizer, inputs)
    return start + step_peak_bytes(step)


def bench_mem_cls_train(reps: int) -> str:
    sizes = []
    for num_pems in (16, 0):
        model = _cls_model(num_pems).train()
        step, optimizer, inputs = _cls_train_step(model)
        sizes.append(_peak(model, step, optimizer, inputs))
    return (f'mem_cls_train  peak tensor memory of a ResNet-32 step, 16 PEMs '
            f'/ 0 PEMs (batch 128): {sizes[0] / sizes[1]:.3f}  '
            f'({_mib(sizes[0])} / {_mib(sizes[1])})')


def _seg_batch():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    meta = dict(
        img_shape=(128, 128),
        ori_shape=(128, 128),
        pad_shape=(128, 128),
        padding_size=[0, 0, 0, 0])
    return dict(
        inputs=[
            torch.randint(
                0, 256, (3, 128, 128), generator=g, dtype=torch.uint8)
            for _ in range(4)
        ],
        data_samples=[
            SegDataSample(
                gt_sem_seg=PixelData(
                    data=torch.randint(0, 2, (1, 128, 128), generator=g)),
                metainfo=meta) for _ in range(4)
        ])


def bench_mem_seg_frozen(reps: int) -> str:
    from mmengine.optim import OptimWrapper

    from mmnpe.engine import FrozenBackboneHook
    frozen, full, _ = _seg_models()
    batch = _seg_batch()
    sizes = []
    for model, freeze in ((frozen, True), (full, False)):
        runner = type('R', (), dict(model=model))()
        hook = FrozenBackboneHook()
        if freeze:
            hook.before_train(runner)
        optimizer = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.01)
        wrapper = OptimWrapper(optimizer)

        def step():
            model.train()
            if freeze:
                hook.before_train_iter(runner, 0)
            model.train_step(copy.deepcopy(batch), wrapper)

        sizes.append(_peak(model, step, optimizer, batch['inputs']))
    return (f'mem_seg_frozen peak tensor memory of a PEM iteration, '
            f'backbone+heads frozen / full fine-tuning, UNet STARE 4x128^2: '
            f'{sizes[0] / sizes[1]:.3f}  ({_mib(sizes[0])} / '
            f'{_mib(sizes[1])})')


def bench_mem_seg_infer(reps: int) -> str:
    npe, stock, _ = (m.eval() for m in _seg_models())
    x = torch.randn(1, 3, 256, 256)
    metas = [
        dict(
            img_shape=(256, 256),
            ori_shape=(256, 256),
            pad_shape=(256, 256),
            padding_size=[0, 0, 0, 0])
    ]
    sizes = []
    for model in (npe, stock):
        model.test_cfg.mode = 'whole'

        def step():
            with torch.no_grad():
                model.inference(x, metas)

        sizes.append(_peak(model, step, inputs=(x, )))
    return (f'mem_seg_infer  peak tensor memory of inference, '
            f'NPEEncoderDecoder (linear PEM) / EncoderDecoder, UNet whole '
            f'256x256: {sizes[0] / sizes[1]:.3f}  ({_mib(sizes[0])} / '
            f'{_mib(sizes[1])})')


SWEEP_SCALES = [0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 0.85, 1.0]

_RUNNERS = 0


def _test_runner(config: str, work_dir: str, state_dict=None, **options):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.default_hooks.logger = None
    # A visualizer of its own: the stock configs name theirs 'visualizer',
    # and mmengine hands a Runner the existing instance of that name, so a
    # line after another would write into the earlier line's folder, gone.
    global _RUNNERS
    _RUNNERS += 1
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = f'bench_{os.getpid()}_{_RUNNERS}'
    runner = Runner.from_cfg(cfg)
    if state_dict is not None:
        runner.model.load_state_dict(state_dict)
    return runner


@contextlib.contextmanager
def _demo_seg_runners():
    """Two test Runners of the demo NPE segmentor with the same random
    weights on 16 + 16 synthetic 64 x 64 images (the B and A/A sides)."""
    from mmnpe.seg import generate_synthetic_lt
    config = osp.join(REPO,
                      'configs/demo/npe_fcn_unet-tiny_synthetic-lt-64x64.py')
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthetic_lt(tmp, num_train=16, num_val=16, size=64)
        data = {
            f'{s}_dataloader.dataset.data_root': tmp
            for s in ('train', 'val', 'test')
        }
        torch.manual_seed(0)
        runner = _test_runner(config, osp.join(tmp, 'a'), **data)
        runner2 = _test_runner(config, osp.join(tmp, 'b'),
                               runner.model.state_dict(), **data)
        yield runner, runner2


def bench_sweep_seg(reps: int) -> str:
    from mmnpe.analysis import sweep_segmentor
    with _demo_seg_runners() as (runner, runner2):
        model, loader = runner.model, runner.test_dataloader

        def sweep():
            sweep_segmentor(model, loader, SWEEP_SCALES, 6).metrics()

        r, aa, base = _paired(sweep, runner.test_loop.run,
                              runner2.test_loop.run, reps)
    return (f'sweep_seg  one-pass sweep of 11 scale factors / one test-loop '
            f'evaluation, demo UNet whole 64x64, 16 images: {r:.3f}  (A/A '
            f'{aa:.3f}; baseline {base * 1e3:.0f} ms)  goal <= 1.3')


def bench_sweep_cls(reps: int) -> str:
    from mmnpe.analysis import sweep_classifier
    from mmnpe.analysis.builder import classification_train_counts
    from mmnpe.cls import LongTailAccuracy
    config = osp.join(REPO, 'configs/demo/npe-la-k16_resnet32_digits-lt.py')
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        runner = _test_runner(config, osp.join(tmp, 'a'))
        runner2 = _test_runner(config, osp.join(tmp, 'b'),
                               runner.model.state_dict())
        model, loader = runner.model, runner.test_dataloader
        # The training images per class, as the sweep tool counts them
        # (the balanced test split carries no rho).
        counts = classification_train_counts(runner.cfg)
        assert isinstance(runner.test_evaluator.metrics[0], LongTailAccuracy)

        def sweep():
            sweep_classifier(model, loader, SWEEP_SCALES, 10).metrics(counts)

        r, aa, base = _paired(sweep, runner.test_loop.run,
                              runner2.test_loop.run, reps)
    return (f'sweep_cls  one-pass sweep of 11 scale factors / one test-loop '
            f'evaluation, ResNet-32 K=16 DigitsLT, 500 images: {r:.3f}  (A/A '
            f'{aa:.3f}; baseline {base * 1e3:.0f} ms)  goal <= 1.3')


def _label_shift_caches(model, loader):
    """The validation cache (the whole split) and a forward-shifted target
    (rho 10) drawn from it, as the label-shift tool holds them."""
    from mmnpe.analysis import collect_logits
    from mmnpe.cls.datasets import label_shift_indices
    with torch.no_grad():
        val = collect_logits(model, loader, max_pixels=None)
    if val.task == 'seg':
        return val, collect_logits(model, loader, max_pixels=None)
    keep, _ = label_shift_indices(val.labels.numpy(), val.num_classes, 10)
    return val, val.select(keep)


def _label_shift_line(name, what, runner, runner2, reps, **kwargs) -> str:
    from mmnpe.analysis import evaluate_label_shift
    val, target = _label_shift_caches(runner.model, runner.test_dataloader)
    info = {}

    def estimate():
        info.update(
            evaluate_label_shift(target, val, ('em', 'bbse'), 'bcts',
                                 **kwargs)['estimates'])

    r, aa, base = _paired(estimate, runner.test_loop.run,
                          runner2.test_loop.run, reps)
    em = info.get('em', {})
    return (f'{name}  calibration (BCTS) + EM + BBSE + metrics of 6 priors '
            f'on the cached logits / one test-loop evaluation, {what}: '
            f'{r:.3f}  (A/A {aa:.3f}; baseline {base * 1e3:.0f} ms; EM '
            f'{em.get("iterations")} iterations)  goal <= 0.05')


def bench_label_shift_cls(reps: int) -> str:
    config = osp.join(REPO, 'configs/demo/npe-la-k16_resnet32_digits-lt.py')
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        runner = _test_runner(config, osp.join(tmp, 'a'))
        runner2 = _test_runner(config, osp.join(tmp, 'b'),
                               runner.model.state_dict())
        from mmnpe.analysis.builder import classification_train_counts
        counts = classification_train_counts(runner.cfg)
        return _label_shift_line(
            'label_shift_cls', 'ResNet-32 K=16 DigitsLT, 500 validation '
            'images, 180 shifted target images',
            runner,
            runner2,
            reps,
            train_counts=counts)


def bench_label_shift_seg(reps: int) -> str:
    with _demo_seg_runners() as (runner, runner2):
        return _label_shift_line(
            'label_shift_seg', 'demo UNet whole 64x64, 16 + 16 images '
            '(65 536 pixels each)', runner, runner2, reps)


def _paired(sweep, run, run2, reps):
    """The sweep runs inside the Runner's scope, as its test loop does."""

    def a():
        with torch.no_grad():
            sweep()

    return paired_ratio(a, run, run2, reps, warmup=1)


# Detection ------------------------------------------------------------------
# The detector of configs/lvis (mmdet's LVIS v1 Mask R-CNN R50-FPN, 1203
# categories), or with --fast a tiny one (the tests' size) for a smoke run.
DET_LVIS = 'lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
DET_FROZEN = [
    'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs',
    'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg',
    'roi_head.mask_head'
]
FAST = dict(enabled=False, size=512)


def _det_cfg():
    import mmdet
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', DET_LVIS))
    model = cfg.model
    if FAST['enabled']:
        model.backbone.update(
            depth=18, base_channels=8, init_cfg=None, num_stages=4)
        model.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
        model.rpn_head.update(in_channels=16, feat_channels=16)
        for key in ('bbox_roi_extractor', 'mask_roi_extractor'):
            model.roi_head[key].out_channels = 16
        model.roi_head.bbox_head.update(
            in_channels=16, fc_out_channels=32, num_classes=12)
        model.roi_head.mask_head.update(
            in_channels=16, conv_out_channels=16, num_convs=1, num_classes=12)
        model.train_cfg.rcnn.sampler.num = 64
        model.test_cfg.rpn.max_per_img = 100
    return model


def _det_models():
    """The stock detector, its NPE-LA twin (one linear PEM, alpha = 1,
    the same weights) and a copy of the stock one (A/A)."""
    import torch.nn as nn
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = _det_cfg()
    torch.manual_seed(0)
    stock = MODELS.build(copy.deepcopy(cfg))
    cfg.roi_head.bbox_head.update(
        type='NPEShared2FCBBoxHead', num_pems=1, scale_factor=1.0)
    # What configs/lvis/*npe-frozen* build: frozen, it runs only what the
    # PEM needs; otherwise (det_infer) it is the stock MaskRCNN.
    cfg.type = 'NPETwoStageDetector'
    npe = MODELS.build(cfg)
    npe.load_state_dict(stock.state_dict(), strict=False)
    nn.init.normal_(npe.roi_head.bbox_head.pems.weight, std=0.05)
    return _fresh(npe, stock, stock)


def _det_batch(num: int, size: int, num_classes: int) -> dict:
    """A data batch as mmdet's loader gives it: uint8 images, three boxes
    with box masks per image."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(num):
        inputs.append(
            torch.randint(
                0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        xy = torch.randint(0, size // 2, (3, 2), generator=g).float()
        wh = torch.randint(size // 8, size // 2, (3, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(3, size, size, dtype=torch.uint8)
        for j, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[j, y1:y2, x1:x2] = 1
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=boxes,
            labels=torch.randint(0, num_classes, (3, ), generator=g),
            masks=BitmapMasks(masks.numpy(), size, size))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _det_size() -> int:
    return 64 if FAST['enabled'] else FAST['size']


def _det_name() -> str:
    return 'tiny Mask R-CNN (--fast)' if FAST['enabled'] else (
        'LVIS v1 Mask R-CNN R50-FPN')


def bench_det_infer(reps: int) -> str:
    npe, stock, stock2 = (m.eval() for m in _det_models())
    num_classes = stock.roi_head.bbox_head.num_classes
    batch = _det_batch(1, _det_size(), num_classes)
    with torch.no_grad():
        r, aa, base = paired_ratio(
            lambda: npe.test_step(copy.deepcopy(batch)),
            lambda: stock.test_step(copy.deepcopy(batch)),
            lambda: stock2.test_step(copy.deepcopy(batch)), reps)
    return (
        f'det_infer  NPE-LA (1 linear PEM) / stock RoI head, {_det_name()} '
        f'({num_classes} classes), {_det_size()}^2: {r:.3f}  (A/A '
        f'{aa:.3f}; baseline {base * 1e3:.0f} ms)  goal <= 1.02')


def _det_step(model, batch, freeze: bool):
    from mmengine.optim import OptimWrapper

    from mmnpe.engine import FrozenBackboneHook
    runner = type('R', (), dict(model=model))()
    hook = FrozenBackboneHook(modules=DET_FROZEN)
    if freeze:
        hook.before_train(runner)
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=0.001,
        momentum=0.9)
    wrapper = OptimWrapper(optimizer)

    def step():
        model.train()
        if freeze:
            hook.before_train_iter(runner, 0)
        model.train_step(copy.deepcopy(batch), wrapper)

    return step, optimizer


def bench_det_frozen(reps: int) -> str:
    npe, stock, stock2 = _det_models()
    num_classes = stock.roi_head.bbox_head.num_classes
    batch = _det_batch(2, _det_size(), num_classes)
    steps = [
        _det_step(npe, batch, True)[0],
        _det_step(stock, batch, False)[0],
        _det_step(stock2, batch, False)[0]
    ]
    r, aa, base = paired_ratio(*steps, reps, warmup=1)
    return (f'det_frozen PEM iteration on the frozen detector / stock '
            f'training iteration, {_det_name()}, 2 x {_det_size()}^2: '
            f'{r:.3f}  (A/A {aa:.3f}; baseline {base:.2f} s)  goal <= 0.2')


def bench_mem_det_infer(reps: int) -> str:
    npe, stock, _ = (m.eval() for m in _det_models())
    batch = _det_batch(1, _det_size(), stock.roi_head.bbox_head.num_classes)
    sizes = []
    for model in (npe, stock):

        def step():
            with torch.no_grad():
                model.test_step(copy.deepcopy(batch))

        sizes.append(_peak(model, step))
    return (f'mem_det_infer  peak tensor memory of inference, NPE-LA / '
            f'stock, {_det_name()}, {_det_size()}^2: '
            f'{sizes[0] / sizes[1]:.3f}  ({_mib(sizes[0])} / '
            f'{_mib(sizes[1])})')


def bench_mem_det_frozen(reps: int) -> str:
    npe, stock, _ = _det_models()
    batch = _det_batch(2, _det_size(), stock.roi_head.bbox_head.num_classes)
    sizes = []
    for model, freeze in ((npe, True), (stock, False)):
        step, optimizer = _det_step(model, batch, freeze)
        sizes.append(_peak(model, step, optimizer))
    return (f'mem_det_frozen peak tensor memory of a PEM iteration on the '
            f'frozen detector / a stock training iteration, {_det_name()}, '
            f'2 x {_det_size()}^2: {sizes[0] / sizes[1]:.3f}  '
            f'({_mib(sizes[0])} / {_mib(sizes[1])})')


BENCHES = dict(
    cls_train=bench_cls_train,
    cls_fused=bench_cls_fused,
    seg_infer=bench_seg_infer,
    seg_frozen=bench_seg_frozen,
    mem_cls_train=bench_mem_cls_train,
    mem_seg_frozen=bench_mem_seg_frozen,
    mem_seg_infer=bench_mem_seg_infer,
    sweep_seg=bench_sweep_seg,
    sweep_cls=bench_sweep_cls,
    label_shift_cls=bench_label_shift_cls,
    label_shift_seg=bench_label_shift_seg,
    det_infer=bench_det_infer,
    det_frozen=bench_det_frozen,
    mem_det_infer=bench_mem_det_infer,
    mem_det_frozen=bench_mem_det_frozen)

# -- Thousands of classes: ImageNet-LT (C = 1 000) and iNaturalist 2018
# (C = 8 142) with ResNet-50, the heads of configs/imagenet_lt and
# configs/inat2018. Not part of the default run (minutes of ResNet-50 on a
# CPU): python benchmarks/bench_npe.py --only lt_train mem_lt_train lt_fused

#: Sizes of the lt_* lines; --lt-batch / --lt-size / --lt-fast change them.
LT_SETTINGS = dict(classes=(1000, 8142), pems=(1, 16), batch=4, size=224)
#: What the test suite runs (tiny; nothing timed is asserted there).
LT_FAST = dict(classes=(10, 30), pems=(1, 16), batch=2, size=32)
#: Goals of the K / 0 training-step ratio at each C (K = 1 alike everywhere).
LT_GOALS = {1000: {1: 1.02, 16: 1.05}, 8142: {1: 1.02, 16: 1.25}}


def _lt_model(num_classes: int, num_pems: int, seed: int = 0):
    """ResNet-50 + pooling + the configs' head: ``LinearClsHead`` (K = 0) or
    ``NPEClsHead`` with K PEMs, the backbone initialised alike (as built:
    the cost does not depend on the weights)."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    head = dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=2048)
    if num_pems:
        head.update(type='NPEClsHead', num_pems=num_pems)
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=50),
            neck=dict(type='GlobalAveragePooling'),
            head=head))
    return model


def _lt_batch(num_classes: int, batch: int, size: int):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g)
    labels = torch.randint(0, num_classes, (batch, ), generator=g)
    return x, [DataSample().set_gt_label(int(y)) for y in labels]


def _lt_step(model, x, samples):
    """One training step as mmengine's OptimWrapper runs it (SGD momentum
    0.9, weight decay as iNaturalist 2018's schedule), timed in two parts:
    forward + backward, then the parameter update (+ zero_grad)."""
    from mmengine.optim import OptimWrapper
    optimizer = torch.optim.SGD(
        model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    wrapper = OptimWrapper(optimizer)

    def step():
        start = time.perf_counter()
        wrapper.backward(sum(model.loss(x, samples).values()))
        middle = time.perf_counter()
        wrapper.step()
        wrapper.zero_grad()
        return middle - start, time.perf_counter() - middle

    return step, optimizer


def paired_medians(fns, reps: int, warmup: int = 1):
    """Medians of the parts each of ``fns`` returns (a tuple of seconds),
    the functions run interleaved in an order that rotates every
    repetition (as :func:`paired_ratio`, for any number of arms)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for rep in range(reps):
        for i in range(len(fns)):
            j = (i + rep) % len(fns)
            times[j].append(fns[j]())
    return [[statistics.median(part) for part in zip(*arm)] for arm in times]


def _lt_settings(**overrides) -> dict:
    """LT_SETTINGS with the arguments a caller gave (None: the setting)."""
    s = dict(LT_SETTINGS)
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s


def _pem_params(num_classes: int, num_pems: int) -> int:
    return num_pems * (2048 + 1) * num_classes


def bench_lt_train(reps: int,
                   classes=None,
                   pems=None,
                   batch=None,
                   size=None) -> str:
    """Training step of ResNet-50 with K PEMs / without, at each C."""
    s = _lt_settings(classes=classes, pems=pems, batch=batch, size=size)
    lines = []
    for c in s['classes']:
        x, samples = _lt_batch(c, s['batch'], s['size'])
        models = _fresh(_lt_model(c, 0), *[_lt_model(c, k) for k in s['pems']])
        models.insert(1, copy.deepcopy(models[0]))  # the A/A control
        steps = [_lt_step(m.train(), x, samples)[0] for m in models]
        med = paired_medians(steps, reps)
        base_fb, base_opt = med[0]
        base = base_fb + base_opt
        control = sum(med[1]) / base
        for k, (fb, opt) in zip(s['pems'], med[2:]):
            goal = LT_GOALS.get(c, {}).get(k)
            lines.append(
                f'lt_train   ResNet-50 step, C={c}, K={k} / K=0 (batch '
                f'{s["batch"]}, {s["size"]}x{s["size"]}): '
                f'{(fb + opt) / base:.3f}  (A/A {control:.3f}; K=0 '
                f'{base:.2f} s = {base_fb:.2f} fwd+bwd + {base_opt:.2f} '
                f'update; K adds {(fb - base_fb) * 1e3:+.0f} ms fwd+bwd, '
                f'{(opt - base_opt) * 1e3:+.0f} ms update; '
                f'{_pem_params(c, k) / 1e6:.1f} M PEM parameters)' +
                (f'  goal <= {goal}' if goal else ''))
    return '\n'.join(lines)


def _state_bytes(optimizer) -> int:
    return _tensor_bytes(t for state in optimizer.state.values()
                         for t in state.values())


def lt_step_memory(num_classes: int, num_pems: int, batch: int,
                   size: int) -> dict:
    """Tensor bytes of one ResNet-50 training step in steady state (after a
    warm-up step, so the momentum buffers exist), by part: ``parameters``,
    ``momentum``, ``gradients`` (one fp32 gradient per parameter), ``start``
    (everything alive when the step starts: parameters, momentum, buffers,
    inputs) and ``during`` (the highest level the step's own allocations
    reach above ``start``: gradients, activations, temporaries)."""
    x, samples = _lt_batch(num_classes, batch, size)
    model = _lt_model(num_classes, num_pems).train()
    step, optimizer = _lt_step(model, x, samples)
    step()
    params = _tensor_bytes(model.parameters())
    return dict(
        parameters=params,
        momentum=_state_bytes(optimizer),
        gradients=params,
        start=_live_bytes(model, optimizer, (x, )),
        during=step_peak_bytes(step))


def bench_mem_lt_train(reps: int,
                       classes=None,
                       pems=None,
                       batch=None,
                       size=None) -> str:
    """Peak tensor memory of the lt_train steps, by part."""
    s = _lt_settings(classes=classes, pems=pems, batch=batch, size=size)
    lines = []
    for c in s['classes']:
        for k in (0, *s['pems']):
            m = lt_step_memory(c, k, s['batch'], s['size'])
            rest = m['start'] - m['parameters'] - m['momentum']
            lines.append(
                f'mem_lt_train  ResNet-50 step, C={c}, K={k} (batch '
                f'{s["batch"]}, {s["size"]}x{s["size"]}): peak '
                f'{_mib(m["start"] + m["during"])} = parameters '
                f'{_mib(m["parameters"])} + momentum {_mib(m["momentum"])} + '
                f'gradients {_mib(m["gradients"])} + activations and '
                f'temporaries {_mib(m["during"] - m["gradients"])} (+ '
                f'{_mib(rest)} inputs and buffers)')
    return '\n'.join(lines)


def bench_lt_fused(reps: int,
                   classes=None,
                   pems=None,
                   batch=None,
                   size=None) -> str:
    """Fused NPE-LA (the largest K) / plain classifier, inference at the
    largest C."""
    import torch.nn as nn
    s = _lt_settings(classes=classes, pems=pems, batch=batch, size=size)
    c, k = max(s['classes']), max(s['pems'])
    npe = _lt_model(c, k).eval()
    for p in npe.head.parameters():
        nn.init.normal_(p, std=0.1)
    fused = _lt_model(c, 0).eval()
    fused.load_state_dict({
        n: v
        for n, v in npe.state_dict().items() if 'pems' not in n
    })
    fused.head.fc = npe.head.fuse()
    x, _ = _lt_batch(c, s['batch'], s['size'])
    plain = _lt_model(c, 0).eval()
    fused, plain, plain2 = _fresh(fused, plain, plain)
    with torch.no_grad():
        same = torch.equal(
            fused(x, mode='tensor').argmax(1),
            npe(x, mode='tensor').argmax(1))
        r, aa, base = paired_ratio(lambda: fused(x, mode='tensor'),
                                   lambda: plain(x, mode='tensor'),
                                   lambda: plain2(x, mode='tensor'), reps)
    return (f'lt_fused   fused NPE-LA (K={k}) / plain classifier inference, '
            f'ResNet-50, C={c} (batch {s["batch"]}, {s["size"]}x'
            f'{s["size"]}): {r:.3f}  (A/A {aa:.3f}; baseline '
            f'{base * 1e3:.0f} ms); identical argmax: {same}  goal 1.00 +- '
            '0.02')


LT_BENCHES = dict(
    lt_train=bench_lt_train,
    mem_lt_train=bench_mem_lt_train,
    lt_fused=bench_lt_fused)
BENCHES.update(LT_BENCHES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=15)
    parser.add_argument('--only', nargs='+', choices=list(BENCHES))
    parser.add_argument(
        '--fast',
        action='store_true',
        help='det_* lines on a tiny detector at 64^2 (a smoke run; the '
        'ratios then say nothing about the LVIS model)')
    parser.add_argument(
        '--det-size',
        type=int,
        default=512,
        help='side of the det_* lines\' square images (default 512)')
    parser.add_argument(
        '--lt-batch',
        type=int,
        help=f'lt_* lines: images per step (default {LT_SETTINGS["batch"]})')
    parser.add_argument(
        '--lt-size',
        type=int,
        help=f'lt_* lines: input side (default {LT_SETTINGS["size"]})')
    parser.add_argument(
        '--lt-fast',
        action='store_true',
        help='lt_* lines at tiny sizes (what the test suite runs)')
    args = parser.parse_args()
    FAST.update(enabled=args.fast, size=args.det_size)
    torch.set_num_threads(1)
    if args.lt_fast:
        LT_SETTINGS.update(LT_FAST)
    for key in ('batch', 'size'):
        if getattr(args, f'lt_{key}') is not None:
            LT_SETTINGS[key] = getattr(args, f'lt_{key}')
    # The lt_* lines run when asked for (--only).
    default = [n for n in BENCHES if n not in LT_BENCHES]
    for name in args.only or default:
        print(BENCHES[name](args.reps), flush=True)


if __name__ == '__main__':
    main()
