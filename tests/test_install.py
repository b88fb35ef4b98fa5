"""The README's install path, in a fresh virtual environment: next to the
user's own torch, torchvision and mmcv, ``pip install -e .`` must give an
environment in which the paper configs (``mmseg::`` / ``mmpretrain::``
bases) load and build.

The user's packages are those of the test environment, linked file by file
into a folder the fresh environment puts on its path (a ``.pth`` file), so
5 GB of torch is not installed again and pip, whatever it upgrades or
removes, only ever removes links. Everything else comes from the package
index, as for a user. Before mmnpe is installed the environment gets the
newest setuptools, as installing torch >= 2.6 brings it; mmengine 0.10
needs ``pkg_resources``, which setuptools >= 82 no longer ships.
"""
import os
import os.path as osp
import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# What the README assumes the user has installed; pip's own tools stay the
# fresh environment's.
USER_PACKAGES = ('torch', 'torchvision', 'mmcv')
NOT_LINKED = {'pip', 'setuptools', 'wheel'}


def _key(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def installed_closure(names, skip=NOT_LINKED):
    """The installed distributions ``names`` need (their requirements, with
    the extras they ask for), by normalised name."""
    found = {}
    stack = [(n, ()) for n in names]
    while stack:
        name, extras = stack.pop()
        key = _key(name)
        if key in skip:
            continue
        if key in found and not extras:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{'extra': e} for e in extras] or [{'extra': ''}]
            if req.marker is None or any(
                    req.marker.evaluate(env) for env in envs):
                stack.append((req.name, tuple(req.extras)))
    return found


def link_distributions(dists, target: str) -> int:
    """Link every file of ``dists`` under ``target``, keeping their paths
    relative to site-packages; returns the number of links."""
    count = 0
    for dist in dists:
        for file in dist.files or []:
            if str(file).startswith('..'):  # scripts outside site-packages
                continue
            src = str(dist.locate_file(file))
            dst = osp.join(target, str(file))
            if not osp.isfile(src) or osp.lexists(dst):
                continue
            os.makedirs(osp.dirname(dst), exist_ok=True)
            os.symlink(src, dst)
            count += 1
    return count


def _run(cmd, **kwargs):
    out = subprocess.run([str(c) for c in cmd],
                         capture_output=True,
                         text=True,
                         cwd=REPO,
                         timeout=900,
                         **kwargs)
    assert out.returncode == 0, (' '.join(map(str, cmd)) + '\n' +
                                 out.stdout[-3000:] + out.stderr[-3000:])
    return out.stdout


LOAD = '''
import setuptools
from mmengine.config import Config
from mmengine.registry import init_default_scope
import mmnpe
from mmseg.registry import MODELS
cfg = Config.fromfile('configs/npe/unet_stare_pem_fcn.py')
init_default_scope('mmseg')
model = MODELS.build(cfg.model)
print('setuptools', setuptools.__version__)
print('built', type(model).__name__, cfg.model.pem_head.type)
'''


@pytest.mark.skipif(
    not all(_key(n) in installed_closure([n]) for n in USER_PACKAGES),
    reason='needs torch, torchvision and mmcv installed')
def test_pip_install_e_next_to_the_users_torch_and_mmcv(tmp_path):
    env = tmp_path / 'env'
    _run([getattr(sys, '_base_executable', sys.executable), '-m', 'venv', env])
    python = env / 'bin' / 'python'
    site = _run([
        python, '-c', 'import sysconfig; print(sysconfig.get_paths()'
        "['purelib'])"
    ]).strip()
    user = tmp_path / 'user_site'
    linked = link_distributions(
        installed_closure(USER_PACKAGES).values(), str(user))
    assert linked > 1000
    with open(osp.join(site, 'users_packages.pth'), 'w') as f:
        f.write(f'{user}\n')
    _run([python, '-m', 'pip', 'install', '-q', '--upgrade', 'setuptools'])
    _run([python, '-m', 'pip', 'install', '-q', '-e', REPO])
    out = _run([python, '-c', LOAD])
    version = re.search(r'setuptools (\d+)', out)
    assert version and int(version.group(1)) < 82, out
    assert 'built NPEEncoderDecoder PEMFCNHead' in out, out
