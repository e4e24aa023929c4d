"""Print the payload of a Secret Manager secret version (for the W&B key of Vertex AI jobs).

    python docker/fetch_secret.py projects/<project>/secrets/wandb-api-key/versions/latest

Vertex AI custom jobs cannot mount Secret Manager secrets as environment variables (Cloud Run and Cloud Build
can), so train-entrypoint.sh reads ``WANDB_API_KEY_SECRET`` with this script and the job's service account.
google-auth comes with gcsfs (``dvc[gs]``, train group); no extra client library is needed.
"""

from __future__ import annotations

import base64
import logging
import re
import sys

logger = logging.getLogger("fetch_secret")

SECRET_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
API = "https://secretmanager.googleapis.com/v1/{name}:access"


def fetch(name: str, timeout_s: float = 30.0) -> str:
    """The secret's payload as text; raises ValueError for a malformed name, RuntimeError for an API error."""
    if not SECRET_VERSION.match(name):
        raise ValueError(
            f"{name!r} is not a secret version name such as projects/P/secrets/S/versions/latest"
        )
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    response = AuthorizedSession(credentials).get(API.format(name=name), timeout=timeout_s)
    if response.status_code != 200:
        raise RuntimeError(
            f"Secret Manager answered {response.status_code} for {name}: {response.text[:200]}"
        )
    return base64.b64decode(response.json()["payload"]["data"]).decode("utf-8").strip()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        logger.error("usage: python docker/fetch_secret.py projects/P/secrets/S/versions/V")
        return 64
    try:
        value = fetch(argv[0])
    except Exception as exc:  # auth, network or API errors: one line, non-zero exit, never the secret
        logger.error("cannot read secret %s: %s", argv[0], exc)
        return 1
    sys.stdout.write(value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
