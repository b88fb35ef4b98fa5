#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NPROC [train.py flags]
# NPROC processes on this machine (one per GPU; on a machine without CUDA,
# CPU processes joined by gloo). Environment: NNODES, NODE_RANK, PORT,
# MASTER_ADDR as torchrun's flags; PYTHON, the interpreter (default python).
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

"${PYTHON:-python}" -m torch.distributed.run --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
