#!/usr/bin/env bash
# Render a cloud/ template: replace ${NAME} with the value of the environment variable NAME.
#
#   PROJECT_ID=my-project REGION=europe-west4 cloud/render.sh cloud/run/service.yaml > /tmp/service.yaml
#
# Only UPPER_CASE names in ${...} are variables. A template variable that is not set (or empty) is an error that
# names it, so nothing half-rendered ever reaches gcloud. The variables are listed in cloud/README.md.
set -euo pipefail
# bash >= 5.2 would turn "&" in a value into the matched text; values are literal here.
shopt -u patsub_replacement 2>/dev/null || true

if [[ $# -ne 1 || ! -f "$1" ]]; then
    echo "usage: cloud/render.sh TEMPLATE  (variables come from the environment; see cloud/README.md)" >&2
    exit 64
fi
template="$1"

names=()  # a read loop rather than mapfile: macOS ships bash 3.2
while IFS= read -r name; do
    names+=("${name}")
done < <(grep -oE '\$\{[A-Z][A-Z0-9_]*\}' "${template}" | sort -u | sed -E 's/^\$\{(.*)\}$/\1/')
if [[ ${#names[@]} -eq 0 ]]; then
    cat "${template}"
    exit 0
fi
missing=()
for name in "${names[@]}"; do
    [[ -n "${!name:-}" ]] || missing+=("${name}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "cloud/render.sh: ${template} needs these variables set: ${missing[*]} (see cloud/README.md)" >&2
    exit 65
fi

content="$(cat "${template}")"
for name in "${names[@]}"; do
    content="${content//\$\{${name}\}/${!name}}"
done
printf '%s\n' "${content}"
