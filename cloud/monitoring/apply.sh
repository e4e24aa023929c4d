#!/usr/bin/env bash
# Create the alert policies of cloud/monitoring/alert-*.yaml in Cloud Monitoring.
#
#   PROJECT_ID=my-project REGION=europe-west4 SERVICE=ticket-triage \
#   NOTIFICATION_CHANNEL=projects/my-project/notificationChannels/1234567890 cloud/monitoring/apply.sh
#
# A notification channel: `gcloud beta monitoring channels create --display-name=oncall --type=email
# --channel-labels=email_address=oncall@example.com` prints its name. Running this twice creates duplicates:
# delete the old policies first (`gcloud alpha monitoring policies list --filter='displayName:ticket-triage'`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PROJECT_ID:?set PROJECT_ID}"
rendered="$(mktemp -d)"
trap 'rm -rf "${rendered}"' EXIT
for policy in "${here}"/alert-*.yaml; do
    out="${rendered}/$(basename "${policy}")"
    "${here}/../render.sh" "${policy}" >"${out}"
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        cat "${out}"
        continue
    fi
    gcloud alpha monitoring policies create --project="${PROJECT_ID}" --policy-from-file="${out}"
done
