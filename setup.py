import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmnpe', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def readme() -> str:
    with open(
            osp.join(osp.dirname(__file__), 'README.md'),
            encoding='utf-8') as f:
        return f.read()


setup(
    name='mmnpe',
    version=get_version(),
    description='Neural Prior Estimation (NPE / NPE-LA) and long-tail '
    'baselines as an OpenMMLab plugin for MMSegmentation, MMPretrain and '
    'MMDetection',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmnpe', 'mmnpe.*']),
    python_requires='>=3.8',
    # Ranges, not pins, so users keep their own CUDA build of torch; the
    # Makefile pins the set tested on CPU machines.
    install_requires=[
        'torch>=1.12',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',  # mmseg 1.2.x refuses mmcv >= 2.2
        'mmsegmentation>=1.2.0,<2.0.0',
        'mmpretrain>=1.2.0,<2.0.0',
        'numpy',
        'ftfy',  # imported by mmseg, not declared by it
        'regex',  # imported by mmseg, not declared by it
        # mmengine 0.10 imports pkg_resources (to find the configs of
        # `mmseg::` / `mmpretrain::` bases), which setuptools >= 82 no longer
        # ships; torch >= 2.6 asks for a recent setuptools, so pip would
        # otherwise bring one without it.
        'setuptools<82',
    ],
    extras_require={
        # quapy: a maintained EM (EMQ) the label-shift tests compare with.
        'tests':
        ['pytest', 'pytest-xdist', 'scikit-learn', 'matplotlib', 'quapy'],
        'demo': ['scikit-learn', 'matplotlib'],
        # pip install -e ".[det]": the MMDetection adapter (mmnpe.det). mmdet
        # 3.3 imports six, tqdm, terminaltables, shapely and pycocotools
        # without declaring them all; its LVISMetric needs the LVIS API.
        'det': [
            'mmdet>=3.0.0,<4.0.0', 'lvis', 'pycocotools', 'shapely',
            'terminaltables', 'six', 'tqdm'
        ],
        # pip install -e ".[deploy]", then pip install --no-deps
        # mmdeploy==1.3.1: ONNX export through MMDeploy (mmnpe.deploy) and
        # its SDK. mmdeploy itself cannot be listed here: it declares
        # protobuf<=3.20.2, which onnx >= 1.23 (protobuf >= 6.31) refuses, so
        # these are the packages it imports; onnxscript is what torch's
        # dynamo exporter needs. tools/misc/install_deps.sh pins the tested
        # versions (docs/user_guides/deployment.md).
        'deploy': [
            'onnx>=1.17', 'onnxruntime>=1.17', 'onnxscript', 'aenum', 'grpcio',
            'multiprocess', 'dill', 'prettytable', 'mmdeploy_runtime'
        ],
    },
    license='Apache License 2.0',
    zip_safe=False)
