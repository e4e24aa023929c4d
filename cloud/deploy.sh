#!/usr/bin/env bash
# Deploy an image to the Cloud Run service, smoke-test it, and roll traffic back to the previous revision if the
# new one fails. Used by cloud/cloudbuild/release.yaml (one step, because Cloud Build runs no step after a failed
# one); runnable by hand with gcloud logged in:
#
#   SERVICE=ticket-triage REGION=europe-west4 IMAGE=europe-west4-docker.pkg.dev/p/ticket-triage/server:abc \
#   RUN_SERVICE_ACCOUNT=ticket-triage-run@p.iam.gserviceaccount.com cloud/deploy.sh
#
# Exit: 0 deployed and healthy; 1 deploy or smoke test failed (traffic back on the previous revision if any).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${SERVICE:?set SERVICE (the Cloud Run service name)}"
: "${REGION:?set REGION (e.g. europe-west4)}"
: "${IMAGE:?set IMAGE (the server image with its bundle)}"
: "${RUN_SERVICE_ACCOUNT:?set RUN_SERVICE_ACCOUNT (the service identity of the Cloud Run service)}"
SMOKE_RETRIES="${SMOKE_RETRIES:-30}"
SMOKE_DELAY_S="${SMOKE_DELAY_S:-2}"
SMOKE_PAYLOAD='{"subject": "Cannot log in", "text": "Since the update this morning no one in our team can log in to the dashboard. Please help urgently."}'

log() { printf '%s [deploy] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

describe() {
    gcloud run services describe "${SERVICE}" --region="${REGION}" --format="value($1)" 2>/dev/null || true
}

previous="$(describe status.latestReadyRevisionName)"
log "service ${SERVICE} in ${REGION}: serving revision '${previous:-none (first deploy)}'"

rollback() {
    log "FAILED: $1"
    local current
    current="$(describe status.latestReadyRevisionName)"
    if [[ -n "${previous}" && "${previous}" != "${current}" ]]; then
        log "rolling back: all traffic to ${previous}"
        gcloud run services update-traffic "${SERVICE}" --region="${REGION}" --to-revisions="${previous}=100"
    elif [[ -n "${previous}" ]]; then
        log "the previous revision ${previous} is still the latest ready one; traffic unchanged"
    else
        log "first deploy: there is no previous revision to roll back to"
    fi
    exit 1
}

rendered="$(mktemp)"
trap 'rm -f "${rendered}"' EXIT
"${here}/render.sh" "${here}/run/service.yaml" >"${rendered}"

log "deploying ${IMAGE}"
if ! gcloud run services replace "${rendered}" --region="${REGION}"; then
    rollback "gcloud run services replace failed (see the revision's logs: the startup probe is /ready)"
fi
url="$(describe status.url)"
revision="$(describe status.latestReadyRevisionName)"
[[ -n "${url}" ]] || rollback "the service has no URL after the deploy"
log "new revision ${revision} at ${url}"

token="$(gcloud auth print-identity-token --audiences="${url}" 2>/dev/null || gcloud auth print-identity-token)"
auth=(-H "Authorization: Bearer ${token}")

ready=0
for ((i = 1; i <= SMOKE_RETRIES; i++)); do
    if curl -fsS --max-time 10 "${auth[@]}" "${url}/ready" >/dev/null; then
        ready=1
        break
    fi
    sleep "${SMOKE_DELAY_S}"
done
[[ ${ready} -eq 1 ]] || rollback "/ready did not answer 200 after ${SMOKE_RETRIES} tries"

answer="$(curl -fsS --max-time 20 "${auth[@]}" -H 'Content-Type: application/json' -d "${SMOKE_PAYLOAD}" \
    "${url}/predict")" || rollback "POST /predict failed"
if ! grep -q '"label"' <<<"${answer}" || ! grep -q '"model_version"' <<<"${answer}"; then
    rollback "POST /predict answered without label/model_version: ${answer}"
fi
log "smoke test passed: ${answer}"
