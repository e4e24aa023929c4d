"""The whole chain on the embedded sample, offline, in one command (the README's main job).

    uv run python scripts/quickstart.py                # minilm (offline encoder), under 10 min on 2 cores
    uv run python scripts/quickstart.py --model tiny   # a tiny random model: seconds (what the test runs)

Steps, each a subprocess of this interpreter run from the repository root:
  1. python -m training.data prepare        (data/sample -> <workdir>/data/processed)
  2. python -m training.run                  (<workdir>/train/checkpoints/best)
  3. python -m export.onnx --quantize        (the export gate -> <workdir>/bundle)
  4. python -m server                        (127.0.0.1, a free port, until /ready answers 200)
  5. POST /predict with a sample ticket      (the answer is printed), then SIGTERM the server

A step that fails stops the run with its exit status and its last lines of output.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("quickstart")

REPO_ROOT = Path(__file__).resolve().parents[1]
TAIL_LINES = 40
SAMPLE_TICKET = {
    "subject": "Payment platform down for all customers",
    "text": "Since this morning none of our customers can complete a payment; the checkout returns "
    "error 503. This is costing us sales every minute, please escalate.",
}


class StepFailedError(RuntimeError):
    def __init__(self, step: str, message: str, code: int = 1) -> None:
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step
        self.code = code


def _relay(stream: Any, tail: collections.deque[str], echo: bool) -> None:
    for line in iter(stream.readline, ""):
        tail.append(line.rstrip("\n"))
        if echo:
            sys.stdout.write(f"    | {line}")
            sys.stdout.flush()
    stream.close()


def _spawn(command: list[str], env: dict[str, str], echo: bool) -> tuple[subprocess.Popen[str], Any, Any]:
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    thread = threading.Thread(target=_relay, args=(process.stdout, tail, echo), daemon=True)
    thread.start()
    return process, tail, thread


def run_step(name: str, index: int, total: int, args: list[str], env: dict[str, str], echo: bool) -> float:
    """Run ``python <args>``; raise StepFailedError with the output's tail when it exits non-zero."""
    command = [sys.executable, *args]
    logger.info("[%d/%d] %s: %s", index, total, name, " ".join(["python", *args]))
    start = time.monotonic()
    process, tail, thread = _spawn(command, env, echo)
    code = process.wait()
    thread.join(timeout=5)
    elapsed = time.monotonic() - start
    if code != 0:
        shown = "\n".join(f"    | {line}" for line in tail)
        raise StepFailedError(name, f"exit status {code} after {elapsed:.0f} s; last lines:\n{shown}", code)
    logger.info("[%d/%d] %s: done in %.1f s", index, total, name, elapsed)
    return elapsed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(method: str, url: str, payload: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_ready(base_url: str, process: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StepFailedError(
                "serve", f"the server exited with status {process.returncode} before /ready"
            )
        try:
            answer: dict[str, Any] = http_json("GET", f"{base_url}/ready", timeout=2.0)
            return answer
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        time.sleep(0.25)
    raise StepFailedError("serve", f"/ready did not answer 200 within {timeout_s:.0f} s (last: {last_error})")


def stop(process: subprocess.Popen[str], timeout_s: float = 15.0) -> int:
    if process.poll() is None:
        process.terminate()  # SIGTERM on POSIX: the server shuts down gracefully
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("the server ignored SIGTERM for %.0f s; killing it", timeout_s)
            process.kill()
            process.wait()
    return int(process.returncode)


def serve_and_predict(
    bundle: Path, env: dict[str, str], echo: bool, ready_timeout_s: float, index: int, total: int
) -> dict[str, Any]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {**env, "MODEL_DIR": str(bundle), "HOST": "127.0.0.1", "PORT": str(port)}
    logger.info("[%d/%d] serve: MODEL_DIR=%s python -m server (on %s)", index, total, bundle, base_url)
    start = time.monotonic()
    process, tail, thread = _spawn([sys.executable, "-m", "server"], server_env, echo)
    try:
        ready = wait_ready(base_url, process, ready_timeout_s)
        logger.info("[%d/%d] serve: ready in %.1f s: %s", index, total, time.monotonic() - start, ready)
        logger.info(
            "[%d/%d] predict: POST %s/predict %s", index + 1, total, base_url, json.dumps(SAMPLE_TICKET)
        )
        try:
            answer: dict[str, Any] = http_json("POST", f"{base_url}/predict", SAMPLE_TICKET)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            raise StepFailedError("predict", f"HTTP {exc.code}: {body}") from exc
        return answer
    except StepFailedError as exc:
        stop(process)
        thread.join(timeout=5)
        shown = "\n".join(f"    | {line}" for line in tail)
        raise StepFailedError(exc.step, f"{exc}; server output:\n{shown}") from exc
    finally:
        code = stop(process)
        thread.join(timeout=5)
        logger.info("server stopped (exit status %s)", code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python scripts/quickstart.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model config: minilm (the default config) or tiny (the smoke experiment: a tiny random BERT)",
    )
    parser.add_argument(
        "--wandb", action="store_true", help="keep the config's W&B logger (offline without a key)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where every output goes (default: outputs/quickstart/<UTC timestamp>)"
    )
    parser.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for training.run (repeatable), e.g. trainer.max_epochs=1",
    )
    parser.add_argument("--no-quantize", action="store_true", help="ship the fp32 model instead of int8")
    parser.add_argument(
        "--export-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for export.onnx (repeatable), e.g. --export-arg=--max-f1-drop=2",
    )
    parser.add_argument("--threads", type=int, default=2, help="OMP/torch threads for the child steps")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for /ready")
    parser.add_argument("--quiet", action="store_true", help="show a step's output only when it fails")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    workdir = (args.workdir or REPO_ROOT / "outputs" / "quickstart" / stamp).resolve()
    processed = workdir / "data" / "processed"
    run_dir = workdir / "train"
    bundle = workdir / "bundle"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(args.threads)),
        "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    train_overrides = [f"data.output_dir={processed}", f"hydra.run.dir={run_dir}"]
    if args.model == "tiny":
        # the tiny random BERT with the settings the tests train it with
        train_overrides.append("experiment=smoke")
    elif args.model:
        train_overrides.append(f"model={args.model}")
    if not args.wandb:
        train_overrides.append("logger=none")
    train_overrides += args.train_override
    export_args = ["-m", "export.onnx", "--checkpoint", str(run_dir / "checkpoints" / "best")]
    export_args += ["--output", str(bundle), "--data", str(processed), "--overwrite"]
    if not args.no_quantize:
        export_args.append("--quantize")
    # The embedded sample's validation split has about 30 tickets: the int8 checks run at their production
    # thresholds with the gate's small-n rules (paired bootstrap, exact binomial bound; docs/export.md).
    # A sample model (a few hundred synthetic tickets) is not expected to beat the TF-IDF baseline: the export
    # gate's quality floor is waived for it, and the bundle is marked as built with a loosened gate.
    export_args.append("--allow-below-baseline")
    export_args += args.export_arg
    echo = not args.quiet
    total = 5
    logger.info("quickstart: everything goes to %s", workdir)
    started = time.monotonic()
    try:
        run_step(
            "prepare", 1, total, ["-m", "training.data", "prepare", f"data.output_dir={processed}"], env, echo
        )
        run_step("train", 2, total, ["-m", "training.run", *train_overrides], env, echo)
        logger.info(
            "[3/5] export: --allow-below-baseline: the quality floor (test macro-F1 >= TF-IDF baseline) is "
            "waived for this sample model; its bundle is marked as built with a loosened gate, not for "
            "production"
        )
        run_step("export", 3, total, export_args, env, echo)
        answer = serve_and_predict(bundle, env, echo, args.ready_timeout, 4, total)
    except StepFailedError as exc:
        logger.error("%s", exc)
        return exc.code if exc.code > 0 else 1
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    sys.stdout.write(json.dumps(answer, indent=2) + "\n")
    logger.info(
        "quickstart done in %.0f s: priority %r (confidence %.2f) from bundle %s",
        time.monotonic() - started,
        answer.get("label"),
        float(answer.get("confidence", 0.0)),
        bundle,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
