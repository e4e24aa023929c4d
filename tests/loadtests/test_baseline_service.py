"""benchmarks.serving.baseline_fastapi and make_checkpoint: the baseline answers the same API as the
server, so the side-by-side numbers compare like with like."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.payloads import check_prediction

pytestmark = pytest.mark.slow


def test_baseline_serves_the_server_api_on_the_same_checkpoint(tiny_checkpoint: Path) -> None:
    from fastapi.testclient import TestClient

    from benchmarks.serving.baseline_fastapi import create_app

    with TestClient(create_app(tiny_checkpoint)) as client:
        assert client.get("/ready").status_code == 200
        single = client.post("/predict", json={"text": "The VPN drops every hour", "subject": "VPN"})
        assert single.status_code == 200
        assert check_prediction(single.json()) is None
        labels = json.loads((tiny_checkpoint / "labels.json").read_text(encoding="utf-8"))["labels"]
        assert set(single.json()["scores"]) == set(labels)
        long_text = " ".join(["printer offline again"] * 400)
        assert client.post("/predict", json={"text": long_text}).json()["truncated"] is True
        batch = client.post("/predict/batch", json={"items": [{"text": "a b c"}, {"text": "d e f"}]})
        assert batch.status_code == 200 and len(batch.json()["predictions"]) == 2
        assert client.post("/predict", json={"text": "   "}).status_code == 422
        assert client.post("/predict", json={"subject": "only"}).status_code == 422


def test_make_checkpoint_writes_the_contract_files_from_offline_minilm(tmp_path: Path) -> None:
    from benchmarks.serving.baseline_fastapi import load_baseline
    from benchmarks.serving.make_checkpoint import make_checkpoint

    out = make_checkpoint(tmp_path / "checkpoints" / "best")
    assert {"config.json", "tokenizer.json", "labels.json", "recipe.json", "metrics.json"} <= {
        p.name for p in out.iterdir()
    }
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "low", "1": "medium", "2": "high"}
    recipe = json.loads((out / "recipe.json").read_text(encoding="utf-8"))
    assert recipe["text_recipe"] == {"fields": ["subject", "body"], "separator": "\n"}
    assert recipe["max_length"] == 256 and recipe["model_name"] == "minilm"
    assert not list(
        tmp_path.joinpath("checkpoints").glob(".*tmp*")
    )  # the temp dir was renamed, not left over
    model = load_baseline(out)
    (prediction,) = model.predict([model.text("Server down since 9:00", "Outage")])
    assert prediction["label"] in {"low", "medium", "high"}
    assert abs(sum(prediction["scores"].values()) - 1.0) < 1e-5
