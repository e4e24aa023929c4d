#!/usr/bin/env bash
# Canary release of a server image on Cloud Run: deploy the new revision with no traffic under the tag `candidate`,
# smoke-test the candidate's own URL, then shift traffic (CANARY_PERCENT first, a check, then 100%), and put the
# traffic back where it was on any failure. Used by cloud/cloudbuild/release.yaml (one step, because Cloud Build
# runs no step after a failed one); runnable by hand with gcloud logged in:
#
#   python cloud/smoke.py expect --bundle bundles/<model_version> > smoke-expected.json
#   SERVICE=ticket-triage REGION=europe-west4 IMAGE=europe-west4-docker.pkg.dev/p/ticket-triage/server:abc \
#   RUN_SERVICE_ACCOUNT=ticket-triage-run@p.iam.gserviceaccount.com SMOKE_EXPECTED=smoke-expected.json \
#   cloud/deploy.sh
#
# 1. record the service's traffic (revision=percent pairs); none: a first deploy
# 2. `gcloud run services replace` cloud/run/service.yaml rendered with the image, a new revision name and a traffic
#    block = the recorded traffic + the new revision at 0% tagged `candidate` (the YAML form of
#    `gcloud run deploy --no-traffic --tag candidate`, which would ignore the service spec). First deploy: 100%.
# 3. smoke the candidate URL (cloud/smoke.py check: /ready, then /predict on cloud/smoke/tickets.json, every label
#    as the bundle gives it offline, SMOKE_EXPECTED); failure here: traffic never moved
# 4. CANARY_PERCENT (default 10; 0 = straight to 100) to the new revision, smoke the service URL, then 100%, smoke
# 5. any failure after traffic moved: `update-traffic --to-revisions=<recorded pairs>`; exit 1
#
# Exit: 0 released; 1 deploy or smoke test failed (traffic as it was before); 64 bad arguments.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${SERVICE:?set SERVICE (the Cloud Run service name)}"
: "${REGION:?set REGION (e.g. europe-west4)}"
: "${IMAGE:?set IMAGE (the server image with its bundle)}"
: "${RUN_SERVICE_ACCOUNT:?set RUN_SERVICE_ACCOUNT (the service identity of the Cloud Run service)}"
: "${SMOKE_EXPECTED:?set SMOKE_EXPECTED (the output of: python cloud/smoke.py expect --bundle BUNDLE)}"
SMOKE_RETRIES="${SMOKE_RETRIES:-30}"
SMOKE_DELAY_S="${SMOKE_DELAY_S:-2}"
CANARY_PERCENT="${CANARY_PERCENT:-10}"
PYTHON="${PYTHON:-python3}"
export REVISION="${REVISION:-${SERVICE}-$(date -u +%Y%m%d-%H%M%S)}"
if ! [[ "${CANARY_PERCENT}" =~ ^[0-9]+$ ]] || ((CANARY_PERCENT > 99)); then
    echo "CANARY_PERCENT must be 0..99, got '${CANARY_PERCENT}'" >&2
    exit 64
fi
[[ -f "${SMOKE_EXPECTED}" ]] || { echo "SMOKE_EXPECTED=${SMOKE_EXPECTED}: no such file" >&2; exit 64; }

log() { printf '%s [deploy] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# A field of the service's JSON description (cloud/smoke.py field): url | traffic (rev=percent,...) | tag-url TAG.
service_field() {
    gcloud run services describe "${SERVICE}" --region="${REGION}" --format=json 2>/dev/null |
        "${PYTHON}" "${here}/smoke.py" field "$@" 2>/dev/null || true
}

smoke() {
    local url="$1" token
    token="$(gcloud auth print-identity-token --audiences="${url}" 2>/dev/null || gcloud auth print-identity-token)"
    SMOKE_TOKEN="${token}" "${PYTHON}" "${here}/smoke.py" check --url "${url}" --expected "${SMOKE_EXPECTED}" \
        --retries "${SMOKE_RETRIES}" --delay "${SMOKE_DELAY_S}"
}

previous="$(service_field traffic)"
log "service ${SERVICE} in ${REGION}: traffic '${previous:-none (first deploy)}'; new revision ${REVISION}"

traffic_moved=0
fail() {
    log "FAILED: $1"
    if [[ ${traffic_moved} -eq 1 && -n "${previous}" ]]; then
        log "rolling back: traffic to ${previous}"
        gcloud run services update-traffic "${SERVICE}" --region="${REGION}" --to-revisions="${previous}" ||
            log "ERROR: the rollback failed too; set it by hand: gcloud run services update-traffic ${SERVICE} --to-revisions=${previous}"
    elif [[ -n "${previous}" ]]; then
        log "traffic never moved: still ${previous} (the candidate revision ${REVISION} serves nothing)"
    else
        log "first deploy: there is no earlier revision to fall back to"
    fi
    exit 1
}

rendered="$(mktemp)"
trap 'rm -f "${rendered}"' EXIT
"${here}/render.sh" "${here}/run/service.yaml" >"${rendered}"
if [[ -n "${previous}" ]]; then
    # Replace the template's traffic block (the file's last key) with: as now, plus the candidate at 0%.
    sed -i.bak '/^  traffic:/,$d' "${rendered}" && rm -f "${rendered}.bak"
    {
        echo "  traffic:"
        IFS=',' read -r -a pairs <<<"${previous}"
        for pair in "${pairs[@]}"; do
            printf '    - revisionName: %s\n      percent: %s\n' "${pair%=*}" "${pair##*=}"
        done
        printf '    - revisionName: %s\n      percent: 0\n      tag: candidate\n' "${REVISION}"
    } >>"${rendered}"
fi

log "deploying ${IMAGE} as ${REVISION}${previous:+ (no traffic, tag candidate)}"
gcloud run services replace "${rendered}" --region="${REGION}" ||
    fail "gcloud run services replace failed (see the revision's logs: the startup probe is /ready)"

if [[ -z "${previous}" ]]; then
    url="$(service_field url)"
    [[ -n "${url}" ]] || fail "the service has no URL after the deploy"
    smoke "${url}" || fail "smoke test of ${url} failed"
    log "first deploy released: ${REVISION} at ${url}"
    exit 0
fi

candidate="$(service_field tag-url candidate)"
[[ -n "${candidate}" ]] || fail "no URL for the tag 'candidate' after the deploy"
log "smoke test of the candidate at ${candidate}"
smoke "${candidate}" || fail "smoke test of the candidate ${candidate} failed"

url="$(service_field url)"
if ((CANARY_PERCENT > 0)); then
    log "canary: ${CANARY_PERCENT}% of the traffic to ${REVISION}"
    traffic_moved=1
    gcloud run services update-traffic "${SERVICE}" --region="${REGION}" \
        --to-revisions="${REVISION}=${CANARY_PERCENT}" || fail "update-traffic to ${CANARY_PERCENT}% failed"
    smoke "${url}" || fail "smoke test of ${url} at ${CANARY_PERCENT}% failed"
fi
log "all traffic to ${REVISION}"
traffic_moved=1
gcloud run services update-traffic "${SERVICE}" --region="${REGION}" --to-revisions="${REVISION}=100" ||
    fail "update-traffic to 100% failed"
smoke "${url}" || fail "smoke test of ${url} at 100% failed"
log "released: ${REVISION} serves 100% at ${url}"
