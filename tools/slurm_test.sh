#!/usr/bin/env bash
# Usage: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py flags]
# As tools/slurm_train.sh: GPUS test processes (GPUS_PER_NODE per node)
# started by srun and joined by tools/test.py --launcher slurm. Environment:
# GPUS (default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5),
# SRUN_ARGS, PYTHON.
set -e
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py flags]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
for name in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
    case ${!name} in
        '' | *[!0-9]* | 0*)
            echo "$0: $name must be a positive integer, got '${!name}'" >&2
            exit 2 ;;
    esac
done
if [ "$GPUS" -lt "$GPUS_PER_NODE" ]; then
    echo "$0: GPUS=$GPUS is fewer than GPUS_PER_NODE=$GPUS_PER_NODE;" \
        "set GPUS_PER_NODE=$GPUS for a single-node job" >&2
    exit 2
fi

set -x
# SRUN_ARGS is split into words on purpose (several srun flags).
# shellcheck disable=SC2086
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "${PYTHON:-python}" -u "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher=slurm "${@:5}"
