"""What does the correction cost once deployed? ONNX Runtime on the CPU.

The models of benchmarks/bench_npe.py's seg_infer and cls_fused lines
(same weights in A and B), exported with ``torch.onnx.export`` of
``mode='tensor'`` (the graph ``tools/deploy/export_onnx.py`` writes; the
MMDeploy export of a segmentor adds only the resize and argmax) and run by
ONNX Runtime with one thread, A and B interleaved, the ratio of medians
over --reps paired repetitions after warm-up, an A/A control (a second
session of B's file) beside it, as in bench_npe.py:

- ``deploy_seg``: NPE-LA segmentor (UNet STARE + linear PEM, 256x256) /
  the stock segmentor, goal <= 1.02;
- ``deploy_cls_fused``: fused NPE-LA ResNet-32 (16 PEMs folded into the
  classifier, batch 256 of 32x32) / the plain classifier, goal 1.00 +- 0.02,
  identical argmax;
- ``deploy_vs_torch``: ONNX Runtime / PyTorch (one thread each) for the
  NPE-LA segmentor, printed (no goal).

    python benchmarks/bench_deploy.py [--reps 15] [--only deploy_seg ...]
"""
import argparse
import os.path as osp
import runpy
import tempfile

import torch
import torch.nn as nn

HERE = osp.dirname(osp.abspath(__file__))
BENCH = runpy.run_path(osp.join(HERE, 'bench_npe.py'), run_name='bench_npe')
paired_ratio = BENCH['paired_ratio']


class _TensorMode(nn.Module):

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')


def _session(model: nn.Module, x: torch.Tensor, folder: str, name: str):
    """ONNX Runtime session (one thread) of ``model(x, mode='tensor')``."""
    import onnxruntime as ort
    path = osp.join(folder, f'{name}.onnx')
    with torch.no_grad():
        torch.onnx.export(
            _TensorMode(model).eval(), (x, ),
            path,
            input_names=['input'],
            output_names=['output'],
            dynamo=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return path, opts


def _run(path: str, opts, x: torch.Tensor):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}
    return (lambda: sess.run(None, feed)), sess


def _seg_sessions(folder: str):
    npe, stock, _ = (m.eval() for m in BENCH['_seg_models']())
    with torch.no_grad():  # a PEM of the scale a trained one has
        for p in npe.pem_heads[0].conv_seg.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(1, 3, 256, 256)
    a = _run(*_session(npe, x, folder, 'npe_seg'), x)
    b_path, opts = _session(stock, x, folder, 'stock_seg')
    return npe, x, a, _run(b_path, opts, x), _run(b_path, opts, x)


def bench_deploy_seg(reps: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        _, _, (a, _), (b, _), (b2, _) = _seg_sessions(folder)
        r, aa, base = paired_ratio(a, b, b2, reps)
    return (f'deploy_seg  ONNX Runtime NPE-LA / stock segmentor, UNet '
            f'256x256: {r:.3f}  (A/A {aa:.3f}; baseline {base * 1e3:.0f} '
            'ms)  goal <= 1.02')


def bench_deploy_cls_fused(reps: int) -> str:
    cls_model = BENCH['_cls_model']
    npe = cls_model(16).eval()
    for p in npe.head.parameters():
        nn.init.normal_(p, std=0.1)
    fused = cls_model(0).eval()
    fused.load_state_dict({
        k: v
        for k, v in npe.state_dict().items() if 'pems' not in k
    })
    fused.head.fc = npe.head.fuse()
    plain = cls_model(0).eval()
    x = torch.randn(256, 3, 32, 32)
    with tempfile.TemporaryDirectory() as folder:
        a, sa = _run(*_session(fused, x, folder, 'fused'), x)
        b_path, opts = _session(plain, x, folder, 'plain')
        (b, _), (b2, _) = _run(b_path, opts, x), _run(b_path, opts, x)
        with torch.no_grad():
            same = bool((torch.from_numpy(a()[0]).argmax(1) == npe(
                x, mode='tensor').argmax(1)).all())
        r, aa, base = paired_ratio(a, b, b2, reps)
    return (f'deploy_cls_fused  ONNX Runtime fused NPE-LA / plain classifier '
            f'(ResNet-32, batch 256): {r:.3f}  (A/A {aa:.3f}; baseline '
            f'{base * 1e3:.0f} ms); identical argmax to PyTorch NPE-LA: '
            f'{same}  goal 1.00 +- 0.02')


def bench_deploy_vs_torch(reps: int) -> str:
    with tempfile.TemporaryDirectory() as folder:
        npe, x, (a, _), _, _ = _seg_sessions(folder)

        def torch_run():
            with torch.no_grad():
                npe(x, mode='tensor')

        # The A/A control: PyTorch against itself.
        r, aa, base = paired_ratio(a, torch_run, torch_run, reps)
    return (f'deploy_vs_torch  ONNX Runtime / PyTorch, NPE-LA segmentor '
            f'UNet 256x256: {r:.3f}  (A/A {aa:.3f}; PyTorch '
            f'{base * 1e3:.0f} ms)  printed, no goal')


BENCHES = dict(
    deploy_seg=bench_deploy_seg,
    deploy_cls_fused=bench_deploy_cls_fused,
    deploy_vs_torch=bench_deploy_vs_torch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=15)
    parser.add_argument('--only', nargs='+', choices=list(BENCHES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.only or list(BENCHES):
        print(BENCHES[name](args.reps), flush=True)


if __name__ == '__main__':
    main()
