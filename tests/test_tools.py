"""tools/train.py and tools/test.py end to end, with mmseg's flags."""
import glob
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np

from helpers import tiny_runner_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _run(script, *args):
    out = subprocess.run([sys.executable, osp.join(REPO, 'tools', script),
                          *map(str, args)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_train_then_test_with_scale_override_and_show_dir(
        tmp_path, synthetic_root):
    cfg = tiny_runner_cfg(str(tmp_path / 'unused'), synthetic_root,
                          max_iters=2)
    cfg['custom_imports'] = dict(imports=['mmnpe'],
                                 allow_failed_imports=False)
    cfg['log_level'] = 'INFO'
    config = tmp_path / 'cfg.py'
    config.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    work = tmp_path / 'work'
    _run('train.py', config, '--work-dir', work)
    ckpt = work / 'iter_2.pth'
    assert ckpt.exists()

    preds = {}
    for alpha in (0.0, 1000.0):
        out_dir = tmp_path / f'out_{alpha:g}'
        log = _run('test.py', config, ckpt, '--work-dir',
                   tmp_path / f'test_{alpha:g}', '--out', out_dir,
                   '--cfg-options', f'model.scale_factor={alpha}')
        assert 'mIoU' in log
        files = sorted(glob.glob(str(out_dir / '*.png')))
        assert len(files) == 2  # one prediction per validation image
        preds[alpha] = np.stack([mmcv.imread(f, 'unchanged') for f in files])
    # The override reached the model: a huge alpha lets the (barely trained)
    # PEM decide, alpha = 0 is the plain segmentor.
    assert not np.array_equal(preds[0.0], preds[1000.0])

    show = tmp_path / 'show'
    _run('test.py', config, ckpt, '--work-dir', tmp_path / 'test_show',
         '--show-dir', show)
    painted = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(painted) == 2
