#!/usr/bin/env bash
# Entrypoint of the training images (docker/train.Dockerfile, docker/train-cuda.Dockerfile).
#
#   train-entrypoint.sh [hydra overrides...]      e.g. experiment=best trainer.max_epochs=5
#
# 1. W&B key from Secret Manager when WANDB_API_KEY_SECRET is set (Vertex AI cannot inject secrets as env vars)
# 2. dvc pull, in no-scm mode (the image has no .git)             skip with DVC_PULL=0
# 3. resume: when $OUTPUT_GCS_URI/<run name>/checkpoints/last exists (a restarted Vertex job), pull the run
#    directory back; when the run directory has checkpoints/last, add trainer.resume=true
# 4. python -m training.run hydra.run.dir=$RUN_DIR "$@"  (python -m training.launch_vertex, i.e. torchrun, on a
#    multi-GPU or multi-replica Vertex job)
# 5. python -m export.onnx --quantize: the export gate             skip with EXPORT=0
# 6. push the run directory (checkpoints, metrics, logs, bundle) to $OUTPUT_GCS_URI/<run name>/, also when a step
#    failed or the job was stopped (SIGTERM is forwarded to the running step, then the outputs are pushed).
#
# Environment:
#   OUTPUT_GCS_URI  gs://bucket/prefix for the outputs; default AIP_MODEL_DIR, which Vertex AI sets from the job's
#                   baseOutputDirectory. Unset: outputs stay in the container (local runs).
#   RUN_NAME        run directory name; default CLOUD_ML_JOB_ID (stable across restarts of one Vertex job), else
#                   a UTC timestamp in Hydra's format. RUN_ROOT: its parent (default outputs/train). RUN_DIR
#                   (default $RUN_ROOT/$RUN_NAME) overrides both. A RUN_DIR on Vertex's /gcs/ mount is already
#                   on GCS: nothing is pulled or pushed (multi-replica jobs need it: every node reads it).
#   DVC_PULL        1 (default) or 0;  DVC_TARGETS: what to pull (default: everything tracked)
#   EXPORT          1 (default) or 0;  EXPORT_ARGS: extra flags for export.onnx (e.g. "--per-tensor")
#   WANDB_API_KEY_SECRET  projects/P/secrets/S/versions/V, read when WANDB_API_KEY is unset. No key: W&B offline.
#   NPROC_PER_NODE  >1, or CLUSTER_SPEC set (several Vertex replicas): launch with training.launch_vertex
#                   (torchrun, DDP; node count, rank and master from Vertex's variables, docs/training.md).
#                   Only node 0 exports and pushes (rank 0 writes the checkpoints).
#   PYTHON          interpreter (default: python)
set -Eeuo pipefail

PYTHON="${PYTHON:-python}"
RUN_NAME="${RUN_NAME:-${CLOUD_ML_JOB_ID:-$(date -u +%Y-%m-%d_%H-%M-%S)}}"
RUN_DIR="${RUN_DIR:-${RUN_ROOT:-outputs/train}/${RUN_NAME}}"
BUNDLE_DIR="${BUNDLE_DIR:-${RUN_DIR}/bundle}"
OUTPUT_GCS_URI="${OUTPUT_GCS_URI:-${AIP_MODEL_DIR:-}}"
DEST="${OUTPUT_GCS_URI:+${OUTPUT_GCS_URI%/}/${RUN_NAME}}"
if [[ "${RUN_DIR}" == /gcs/* ]]; then
    DEST=""  # Vertex's Cloud Storage FUSE mount: the run directory is written to GCS as it goes
fi
DVC_PULL="${DVC_PULL:-1}"
EXPORT="${EXPORT:-1}"

log() { printf '%s [train-entrypoint] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
    log "ERROR: $1"
    exit "${2:-1}"
}

# Run a step in the background so that this script (PID 1 in the container) can forward SIGTERM/SIGINT to it.
child=0
forward() {
    log "received SIG$1: forwarding it to the running step"
    if [[ ${child} -ne 0 ]]; then kill -s "$1" "${child}" 2>/dev/null || true; fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT
run() {
    "$@" &
    child=$!
    local status=0
    wait "${child}" || status=$?
    # A trapped signal interrupts `wait` (status > 128) while the step is still finishing: wait for it again.
    while kill -0 "${child}" 2>/dev/null; do
        status=0
        wait "${child}" || status=$?
    done
    child=0
    return "${status}"
}

push_outputs() {
    local status=$?
    trap - EXIT
    if [[ -n "${DEST}" && -d "${RUN_DIR}" ]]; then
        log "pushing ${RUN_DIR} to ${DEST} (exit status so far: ${status})"
        if ! "${PYTHON}" docker/gcs_sync.py push "${RUN_DIR}" "${DEST}"; then
            log "ERROR: pushing the outputs to ${DEST} failed"
            if [[ ${status} -eq 0 ]]; then status=4; fi
        fi
    fi
    exit "${status}"
}
trap push_outputs EXIT

overrides=()
for arg in "$@"; do
    if [[ "${arg}" == hydra.run.dir=* ]]; then
        die "set RUN_DIR or RUN_NAME instead of hydra.run.dir= (the entrypoint must know where the run goes)" 64
    fi
    overrides+=("${arg}")
done

if [[ -z "${WANDB_API_KEY:-}" && -n "${WANDB_API_KEY_SECRET:-}" ]]; then
    log "reading the W&B key from ${WANDB_API_KEY_SECRET}"
    WANDB_API_KEY="$("${PYTHON}" docker/fetch_secret.py "${WANDB_API_KEY_SECRET}")" ||
        die "cannot read ${WANDB_API_KEY_SECRET}: grant the job's service account roles/secretmanager.secretAccessor" 5
    export WANDB_API_KEY
fi

case "${DVC_PULL}" in
    1 | true | yes)
        command -v dvc >/dev/null || die "dvc not found on PATH; install the train group or set DVC_PULL=0" 2
        if [[ ! -d .git ]]; then
            # No git repository inside the image: dvc must run in no-scm mode (local config, never committed).
            dvc config --local core.no_scm true || die "dvc config failed: is .dvc/config in the image?" 2
        fi
        log "dvc pull ${DVC_TARGETS:-}"
        # shellcheck disable=SC2086  # DVC_TARGETS is a space-separated list of targets on purpose
        dvc pull ${DVC_TARGETS:-} ||
            die "dvc pull failed: check the remote in .dvc/config and the job's access to that bucket" 2
        ;;
    0 | false | no) log "DVC_PULL=${DVC_PULL}: using the data already in the image or mounted" ;;
    *) die "DVC_PULL must be 1 or 0, got '${DVC_PULL}'" 64 ;;
esac

if [[ -n "${DEST}" && ! -d "${RUN_DIR}/checkpoints/last" ]]; then
    pulled=0
    "${PYTHON}" docker/gcs_sync.py pull "${DEST}" "${RUN_DIR}" || pulled=$?
    case "${pulled}" in
        0) log "pulled the earlier outputs of this run from ${DEST}" ;;
        3) log "no earlier outputs at ${DEST}: a fresh run" ;;
        *) die "could not read ${DEST} to check for an interrupted run" 2 ;;
    esac
fi
if [[ -d "${RUN_DIR}/checkpoints/last" ]]; then
    log "resuming the interrupted run in ${RUN_DIR}"
    overrides+=("trainer.resume=true")
fi

launcher=("${PYTHON}" -m training.run)
node_rank=0
if [[ "${NPROC_PER_NODE:-1}" -gt 1 || -n "${CLUSTER_SPEC:-}" ]]; then
    launcher=("${PYTHON}" -m training.launch_vertex)
    node_rank="$("${PYTHON}" -c 'import os; from training.launch_vertex import node_spec; print(node_spec(os.environ).node_rank)')" ||
        die "cannot read this replica's place in the cluster from CLUSTER_SPEC / MASTER_ADDR / RANK" 2
fi
log "training: ${launcher[*]} hydra.run.dir=${RUN_DIR} ${overrides[*]}"
run "${launcher[@]}" "hydra.run.dir=${RUN_DIR}" "${overrides[@]}"
if [[ "${node_rank}" != 0 ]]; then
    log "node ${node_rank}: done (node 0 exports and pushes)"
    DEST=""
    exit 0
fi

case "${EXPORT}" in
    1 | true | yes)
        checkpoint="${RUN_DIR}/checkpoints/best"
        [[ -d "${checkpoint}" ]] || die "training finished without ${checkpoint}; nothing to export" 3
        log "export gate: ${PYTHON} -m export.onnx --checkpoint ${checkpoint} --quantize --output ${BUNDLE_DIR} ${EXPORT_ARGS:-}"
        # shellcheck disable=SC2086  # EXPORT_ARGS holds several flags on purpose
        run "${PYTHON}" -m export.onnx --checkpoint "${checkpoint}" --quantize --output "${BUNDLE_DIR}" --overwrite \
            ${EXPORT_ARGS:-}
        ;;
    0 | false | no) log "EXPORT=${EXPORT}: skipping the export" ;;
    *) die "EXPORT must be 1 or 0, got '${EXPORT}'" 64 ;;
esac
log "done: ${RUN_DIR}${DEST:+ (pushed to ${DEST})}"
