"""How cheap is NPE? Ratios measured side by side in one process on the CPU.

Each measure times A (the NPE variant) and B (its baseline) interleaved with
one thread, takes the ratio of medians over --reps paired repetitions after
warm-up, and prints an A/A control (B against a copy of itself) beside it:
the control's distance from 1.00 is the noise floor of that line.

    python benchmarks/bench_npe.py [--reps 15] [--only cls_train ...]

Goals (DESIGN.md section 5): cls_train <= 1.03, cls_fused 1.00 +- 0.01 with
identical argmax, seg_infer <= 1.02, seg_frozen <= 0.35.
"""
import argparse
import copy
import os.path as osp
import statistics
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
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/npe/unet_stare_pem_fcn_s1.py'))
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
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmnpe.engine import FrozenBackboneHook

    frozen, full, full2 = _seg_models()
    runner = type('R', (), dict(model=frozen))()
    hook = FrozenBackboneHook()
    hook.before_train(runner)
    g = torch.Generator().manual_seed(0)
    meta = dict(
        img_shape=(128, 128),
        ori_shape=(128, 128),
        pad_shape=(128, 128),
        padding_size=[0, 0, 0, 0])
    batch = dict(
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


BENCHES = dict(
    cls_train=bench_cls_train,
    cls_fused=bench_cls_fused,
    seg_infer=bench_seg_infer,
    seg_frozen=bench_seg_frozen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=15)
    parser.add_argument('--only', nargs='+', choices=list(BENCHES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.only or BENCHES:
        print(BENCHES[name](args.reps), flush=True)


if __name__ == '__main__':
    main()
