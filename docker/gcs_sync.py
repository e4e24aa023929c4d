"""Copy a directory tree to or from a ``gs://`` URI (or any fsspec URL, a local path included).

    python docker/gcs_sync.py push outputs/train/<run> gs://<bucket>/train/<run>
    python docker/gcs_sync.py pull gs://<bucket>/train/<run> outputs/train/<run>

Used by train-entrypoint.sh: push keeps a run's checkpoints, metrics and bundle; pull restores an interrupted
run so that ``trainer.resume=true`` continues it. gcsfs comes with ``dvc[gs]`` (train group): the image needs
no gcloud SDK; credentials are the job's service account (Application Default Credentials).

Exit codes: 0 copied; 1 storage error; 3 (pull) nothing at the source; 64 usage.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

logger = logging.getLogger("gcs_sync")

EXIT_OK, EXIT_ERROR, EXIT_EMPTY, EXIT_USAGE = 0, 1, 3, 64


def push(source: Path, destination: str) -> int:
    """Copy every file under ``source`` to ``destination``; returns the number of files copied."""
    import fsspec

    if not source.is_dir():
        raise NotADirectoryError(f"{source} is not a directory")
    fs, root = fsspec.core.url_to_fs(destination)
    root = root.rstrip("/")
    copied = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = f"{root}/{path.relative_to(source).as_posix()}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), target)
        copied += 1
    return copied


def pull(source: str, destination: Path) -> int:
    """Copy every file under ``source`` into ``destination``; returns the number of files copied (0: none)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(source)
    root = root.rstrip("/")
    if not fs.exists(root):
        return 0
    copied = 0
    for remote in sorted(fs.find(root)):
        relative = remote[len(root) :].lstrip("/")
        if not relative:
            continue
        local = destination / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))
        copied += 1
    return copied


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 3 or argv[0] not in {"push", "pull"}:
        logger.error("usage: python docker/gcs_sync.py push LOCAL_DIR URI | pull URI LOCAL_DIR")
        return EXIT_USAGE
    command, source, destination = argv
    try:
        copied = push(Path(source), destination) if command == "push" else pull(source, Path(destination))
    except Exception as exc:  # any storage error: one clear line, non-zero exit; the caller decides
        logger.error("%s %s -> %s failed: %s", command, source, destination, exc)
        return EXIT_ERROR
    if copied == 0 and command == "pull":
        logger.info("nothing at %s", source)
        return EXIT_EMPTY
    logger.info("%s: copied %d file(s) from %s to %s", command, copied, source, destination)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
