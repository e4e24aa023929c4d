"""Configure stdlib logging once per entry point (Hydra configures it for ``training.run``; this is for the
others).
"""

from __future__ import annotations

import logging
import os

FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def configure_logging(level: str | None = None) -> None:
    """Root logger to stderr at ``level`` (default: env ``LOG_LEVEL`` or INFO); quiet chatty libraries."""
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(), format=FORMAT, force=True
    )
    for noisy in ("urllib3", "filelock", "matplotlib", "PIL", "fsspec", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
