#!/usr/bin/env bash
# Submit a Vertex AI training job from cloud/vertex/train-{cpu,gpu,gpu-multinode}.yaml.
#
#   PROJECT_ID=my-project REGION=europe-west4 REPO=ticket-triage BUCKET=my-bucket \
#   TRAIN_SERVICE_ACCOUNT=ticket-triage-train@my-project.iam.gserviceaccount.com \
#   cloud/vertex/submit.sh gpu experiment=best
#
# Arguments after the kind are Hydra overrides for training.run. Default: experiment=quick data=full (MiniLM, CPU,
# the full data of data.dvc) for cpu,
# experiment=best (multilingual DistilBERT, bf16, CUDA) for gpu and gpu-multinode.
# IMAGE_TAG (default latest) picks the image built by cloud/cloudbuild/images.yaml. DRY_RUN=1 prints the rendered
# job spec instead of submitting it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || ! -f "${here}/train-$1.yaml" ]]; then
    echo "usage: cloud/vertex/submit.sh cpu|gpu|gpu-multinode [hydra overrides...]" >&2
    exit 64
fi
kind="$1"
shift
if [[ $# -eq 0 ]]; then
    if [[ "${kind}" == cpu ]]; then set -- experiment=quick data=full; else set -- experiment=best; fi
fi

# The overrides as a JSON list (the YAML flow form of containerSpec.args); quotes and backslashes escaped.
json_args=""
for arg in "$@"; do
    escaped="${arg//\\/\\\\}"
    escaped="${escaped//\"/\\\"}"
    json_args+="${json_args:+, }\"${escaped}\""
done
export TRAIN_ARGS="[${json_args}]"
export IMAGE_TAG="${IMAGE_TAG:-latest}"

spec="$(mktemp)"  # gcloud reads the YAML by content; BSD mktemp has no --suffix
trap 'rm -f "${spec}"' EXIT
"${here}/../render.sh" "${here}/train-${kind}.yaml" >"${spec}"

if [[ "${DRY_RUN:-0}" == 1 ]]; then
    cat "${spec}"
    exit 0
fi
display_name="ticket-triage-${kind}-$(date -u +%Y%m%d-%H%M%S)"
gcloud ai custom-jobs create --project="${PROJECT_ID}" --region="${REGION}" --display-name="${display_name}" \
    --config="${spec}"
