#!/usr/bin/env bash
# Install the tested dependency set of mmnpe into a virtual environment, from nothing.
#
# Usage: tools/misc/install_deps.sh VENV_DIR
#
# Pins (see docs/get_started.md, "Tested versions", for why each one):
#   torch 2.14.1 + torchvision 0.29.1  (a pair whose torchvision imports on CPU-only machines;
#   mmpretrain imports torchvision)
#   mmcv 2.1.0 built from source with ops (no wheel exists; mmseg needs mmcv.ops)
#   mmengine 0.10.7, mmsegmentation 1.2.2, mmpretrain 1.2.0, setuptools >=77,<82
#   mmdet 3.3.0 + lvis 0.5.3 (the detection adapter, `pip install -e ".[det]"`;
#   mmdet imports six, tqdm, terminaltables, shapely, pycocotools undeclared)
#   mmdeploy 1.3.1 with --no-deps (it declares protobuf<=3.20.2 and onnx 1.23 needs
#   protobuf>=6.31.1: pip's resolver refuses the pair), plus what it imports (aenum grpcio multiprocess
#   dill prettytable), onnx 1.23, onnxruntime 1.32, onnxscript 0.7.2 (torch's dynamo exporter)
#   and the SDK mmdeploy_runtime 1.3.1 (CPU wheel, ONNX Runtime 1.15 inside): the `deploy`
#   extra of setup.py, docs/user_guides/deployment.md
#
# The mmcv build takes 20-30 minutes on 2 cores, so its wheel is cached *outside* the
# repository (a fresh CI clone would lose an in-repo cache), keyed by the torch version:
# pip's own cache keys a built wheel by the source archive only and would silently reuse
# a wheel compiled against another torch.
set -euo pipefail

VENV=$(realpath -m "${1:?usage: install_deps.sh VENV_DIR}")
TORCH_VERSION=${TORCH_VERSION:-2.14.1}
TORCHVISION_VERSION=${TORCHVISION_VERSION:-0.29.1}
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE_ROOT=${MMNPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmnpe}
WHEEL_DIR="$CACHE_ROOT/wheels/torch-$TORCH_VERSION"
PY="$VENV/bin/python"

log() { printf '[install_deps] %s\n' "$*"; }

if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "setuptools>=77,<82" wheel ninja
"$PY" -m pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

mmcv_wheel() { ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1; }

if [ -z "$(mmcv_wheel)" ]; then
    log "no cached mmcv $MMCV_VERSION wheel for torch $TORCH_VERSION in $WHEEL_DIR: building (20-30 min)"
    mkdir -p "$WHEEL_DIR"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    "$PY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
    tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers refuse anything below C++20 ("C++20 or later compatible compiler
    # is required to use ATen"), but mmcv 2.1.0's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q -- '-std=c++20' "$src/setup.py" || { log "C++20 patch did not apply to $src/setup.py"; exit 1; }
    # --no-build-isolation: the build must see the pinned torch; --no-cache-dir: see above.
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$PY" -m pip wheel -q \
        --no-build-isolation --no-cache-dir --no-deps -w "$build/dist" .)
    # Move into place only when complete, so an interrupted build never leaves a bad wheel.
    mv "$build"/dist/mmcv-*.whl "$WHEEL_DIR/"
fi
log "mmcv wheel: $(mmcv_wheel)"
"$PY" -m pip install -q "$(mmcv_wheel)"
"$PY" -m pip install -q "mmengine==0.10.7" "mmsegmentation==1.2.2" "mmpretrain==1.2.0" \
    ftfy regex scikit-learn matplotlib pytest pytest-xdist quapy \
    "flake8==7.5.0" "isort==9.0.2" "yapf==0.43.0"
"$PY" -m pip install -q "mmdet==3.3.0" "lvis==0.5.3" pycocotools shapely terminaltables six tqdm
"$PY" -m pip install -q --no-deps "mmdeploy==1.3.1"
"$PY" -m pip install -q aenum grpcio multiprocess dill prettytable "onnx==1.23.*" \
    "onnxruntime==1.32.*" "onnxscript==0.7.2" "mmdeploy_runtime==1.3.1"
"$PY" -m pip install -q --no-deps --no-build-isolation -e .
"$PY" -c "import mmcv.ops, mmseg, mmpretrain, mmdet, lvis, mmdeploy, onnxruntime, torch, torchvision; print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'mmpretrain', mmpretrain.__version__, 'mmdet', mmdet.__version__, 'mmdeploy', mmdeploy.__version__, 'onnxruntime', onnxruntime.__version__)"
