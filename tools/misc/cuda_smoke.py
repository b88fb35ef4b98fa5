"""CUDA smoke check (``make cuda-smoke``): short GPU runs of the demo configs.

CI has no GPU, so this is the one command to run on a CUDA machine before a
release. Through tools/train.py and tools/test.py, as a user would:

1. the synthetic segmentation set and a short baseline (stock UNet + FCN);
2. the NPE-LA segmentation config (PEM + FrozenBackboneHook) from that
   baseline, without and with ``--amp``, each then evaluated;
3. the classification NPE-LA config (16 PEMs) one epoch, without and with
   ``--amp``, each then evaluated.

Every step must exit 0, log CUDA memory (it ran on the GPU), report finite
losses and its metrics, and print no device or dtype error; the first
failure stops the check with the step's log tail and a non-zero exit.
Without a CUDA device it refuses at once (exit 2).
"""
import argparse
import math
import os
import os.path as osp
import re
import subprocess
import sys
import time

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
SEG_BASELINE = osp.join(DEMO, 'fcn_unet-tiny_synthetic-lt-64x64.py')
SEG_NPE = osp.join(DEMO, 'npe_fcn_unet-tiny_synthetic-lt-64x64.py')
CLS_NPE = osp.join(DEMO, 'npe-la-k16_resnet32_digits-lt.py')
# Messages of device or dtype mix-ups (tensors on two devices, half/float
# mismatches, kernels without a half version).
BAD = re.compile(
    r'Expected all tensors to be on the same device|device-side assert|'
    r'expected scalar type|Input type .* and weight type|'
    r'(Runtime|Type)Error: .*dtype|not implemented for \'(Half|BFloat16)\'|'
    r'CUDA error|Traceback')


class SmokeFailure(RuntimeError):
    pass


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/cuda_smoke')
    parser.add_argument(
        '--iters', type=int, default=20, help='segmentation iterations')
    parser.add_argument(
        '--timeout', type=int, default=900, help='seconds per step')
    return parser.parse_args()


def run_step(name: str, args: list, timeout: int, metric: str) -> str:
    """Run one tool invocation and check its output."""
    cmd = [sys.executable] + [str(a) for a in args]
    start = time.time()
    try:
        out = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(
                os.environ,
                PYTHONPATH=os.pathsep.join(
                    [REPO, os.environ.get('PYTHONPATH', '')])))
    except subprocess.TimeoutExpired:
        raise SmokeFailure(f'{name}: no result after {timeout} s') from None
    log = out.stdout + out.stderr
    tail = '\n'.join(log.splitlines()[-40:])
    if out.returncode != 0:
        raise SmokeFailure(f'{name}: exit code {out.returncode}\n{tail}')
    bad = BAD.search(log)
    if bad:
        raise SmokeFailure(f'{name}: "{bad.group(0)}" in the log\n{tail}')
    if 'train.py' in str(args[0]):
        if 'memory:' not in log:
            raise SmokeFailure(f'{name}: no CUDA memory in the training log '
                               f'(did it run on the CPU?)\n{tail}')
        losses = [float(v) for v in re.findall(r'\bloss: (\S+)', log)]
        if not losses or not all(math.isfinite(v) for v in losses):
            raise SmokeFailure(f'{name}: losses {losses}\n{tail}')
    if metric not in log:
        raise SmokeFailure(f'{name}: no {metric} in the log\n{tail}')
    print(f'PASS {name} ({time.time() - start:.0f} s)', flush=True)
    return log


def main() -> int:
    args = parse_args()
    if not torch.cuda.is_available():
        print(
            'cuda-smoke: no CUDA device is visible to torch '
            f'{torch.__version__} (torch.cuda.is_available() is False); this '
            'check only runs on a machine with an NVIDIA GPU and a CUDA '
            'build of torch.',
            file=sys.stderr)
        return 2
    print(
        f'cuda-smoke on {torch.cuda.get_device_name(0)}, torch '
        f'{torch.__version__}',
        flush=True)
    sys.path.insert(0, REPO)
    from mmnpe.seg import generate_synthetic_lt

    work = osp.abspath(args.work_dir)
    data = osp.join(work, 'data')
    generate_synthetic_lt(data, num_train=16, num_val=4, size=64)
    train = osp.join(REPO, 'tools', 'train.py')
    test = osp.join(REPO, 'tools', 'test.py')
    n = args.iters
    seg_data = [
        f'{split}_dataloader.dataset.data_root={data}'
        for split in ('train', 'val', 'test')
    ]
    try:
        base_dir = osp.join(work, 'seg_baseline')
        run_step('seg baseline train', [
            train, SEG_BASELINE, '--work-dir', base_dir, '--cfg-options',
            f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
            f'default_hooks.checkpoint.interval={n}', *seg_data
        ], args.timeout, 'mIoU')
        baseline = osp.join(base_dir, f'iter_{n}.pth')
        for amp in ((), ('--amp', )):
            tag = 'amp' if amp else 'fp32'
            out = osp.join(work, f'seg_npe_{tag}')
            run_step(f'seg NPE-LA train ({tag})', [
                train, SEG_NPE, '--work-dir', out, *amp, '--cfg-options',
                f'load_from={baseline}', f'train_cfg.max_iters={n}',
                f'train_cfg.val_interval={n}',
                f'default_hooks.checkpoint.interval={n}', *seg_data
            ], args.timeout, 'mIoU')
            run_step(f'seg NPE-LA test ({tag})', [
                test, SEG_NPE,
                osp.join(out, f'iter_{n}.pth'), '--work-dir', out + '_test',
                '--cfg-options', *seg_data
            ], args.timeout, 'mIoU')
            out = osp.join(work, f'cls_npe_{tag}')
            run_step(f'cls NPE-LA K=16 train ({tag})', [
                train, CLS_NPE, '--work-dir', out, *amp, '--cfg-options',
                'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1'
            ], args.timeout, 'lt/top1')
            run_step(f'cls NPE-LA K=16 test ({tag})', [
                test, CLS_NPE,
                osp.join(out, 'epoch_1.pth'), '--work-dir', out + '_test'
            ], args.timeout, 'lt/top1')
    except SmokeFailure as err:
        print(f'FAIL {err}', file=sys.stderr, flush=True)
        return 1
    print('cuda-smoke: all steps passed', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
