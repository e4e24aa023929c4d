"""The server imports only its own dependency group: never torch, transformers, training or export."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.server.conftest import REPO_ROOT

FORBIDDEN = [
    "torch",
    "transformers",
    "optimum",
    "training",
    "export",
    "onnx",
    "sklearn",
    "pandas",
    "hydra",
    "wandb",
]

PROBE = """
import json, sys
from pathlib import Path
import server.__main__, server.app, server.routes, server.engine
import server.batching, server.predlog, server.bundle
from server.app import create_app
from server.settings import Settings
create_app(Settings(model_dir=Path("unused")))
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_server_imports_no_training_stack() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"litestar", "onnxruntime", "tokenizers", "msgspec", "uvicorn", "prometheus_client"} <= loaded
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
