"""The triage page (GET /) in headless Chromium against a real server process and the real tiny bundle.

One server (a copy of the tiny bundle with a review threshold; MAX_BATCH_ITEMS=16, MAX_TEXT_CHARS=5000) and
one browser serve the whole module; every test gets a fresh page that records console errors and CSP
violations and fails on any. Screenshots of every view go to the test's tmp dir (``screenshots/``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import REPO_ROOT, ServerProcess

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STATIC = REPO_ROOT / "server" / "static"
SAMPLE = REPO_ROOT / "data" / "sample" / "tickets.csv"
BATCH_ITEMS = 16
MAX_TEXT_CHARS = 5000
TIMEOUT_MS = 20_000

browser_marks = [pytest.mark.browser, pytest.mark.slow]

# Injected before any page script (Playwright's init scripts are not subject to the page's CSP).
RECORD_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _expect(locator: Any) -> Any:
    """Playwright's retrying assertions (polled by the driver: nothing is eval'ed under the page's CSP)."""
    from playwright.sync_api import expect

    return expect(locator)


def _chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("no chromium binary (install the Debian package: apt-get install -y chromium)")
    return found


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def review_bundle(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle with a `review` block in its manifest (the manifest is not in its own file list).

    The threshold is the median confidence of the tiny model on the sample tickets the tests send (measured
    in process by the server's engine on the unchanged bundle), so about half of them need review, whatever
    the freshly trained model's scores.
    """
    from server.bundle import load_bundle
    from server.engine import Engine

    engine = Engine.load(load_bundle(bundle_dir))
    texts = [engine.build_text(r["subject"], r["body"]) for r in _sample_rows(50)]
    confidences = sorted(p.confidence for p in engine.predictions(engine.infer(engine.tokenize(texts))))
    threshold = (confidences[24] + confidences[25]) / 2
    copy = Path(shutil.copytree(bundle_dir, tmp_path_factory.mktemp("page_bundle") / "bundle"))
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest["review"] = {"threshold": threshold, "target_accuracy": 0.7}
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def server(review_bundle: Path) -> Iterator[ServerProcess]:
    env = {"MAX_BATCH_ITEMS": str(BATCH_ITEMS), "MAX_TEXT_CHARS": str(MAX_TEXT_CHARS)}
    with ServerProcess(review_bundle, env=env) as process:
        process.wait_ready()
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = tmp_path / "screenshots"
    directory.mkdir()
    return directory


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """A fresh page on GET / (/info and /ready answered); fails the test on console errors or CSP blocks."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_init_script(RECORD_CSP)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.allowed_statuses = {"413", "429"}  # a test provokes these; more where a test says so
    tab.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if _unexpected(m, tab.allowed_statuses) else None,
    )
    tab.set_default_timeout(TIMEOUT_MS)
    tab.goto(f"{server.base_url}/")
    tab.wait_for_selector("body[data-ready]")
    try:
        yield tab
        csp = tab.evaluate("window.__csp")
        assert csp == [], f"CSP violations: {csp}"
        assert problems == [], problems
    finally:
        context.close()


# ------------------------------------------------------------------------------------------------ helpers


# Chromium logs every 4xx answer as a console error; tests add the statuses they provoke on purpose.
_FAILED_RESOURCE = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


def _unexpected(message: Any, allowed: set[str]) -> bool:
    if message.type != "error":
        return False
    failed = _FAILED_RESOURCE.search(message.text)
    return not (failed and failed.group(1) in allowed)


def _item(subject: str, body: str) -> dict[str, str]:
    return {"text": body, "subject": subject} if subject.strip() else {"text": body}


def _sample_rows(n: int) -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[:n]


def _csv_bytes(header: list[str], rows: list[list[str]], *, delimiter: str = ",") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows([header, *rows])
    return buf.getvalue().encode("utf-8")


def _batch(server: ServerProcess, items: list[dict[str, str]]) -> list[dict[str, Any]]:
    """What /predict/batch answers for `items`, sent in the same MAX_BATCH_ITEMS chunks as the page does."""
    out: list[dict[str, Any]] = []
    for at in range(0, len(items), BATCH_ITEMS):
        response = httpx.post(
            f"{server.base_url}/predict/batch", json={"items": items[at : at + BATCH_ITEMS]}, timeout=30
        )
        assert response.status_code == 200, response.text
        out.extend(response.json()["predictions"])
    return out


def _table(page: Any) -> list[dict[str, Any]]:
    """The results table as shown, top to bottom."""
    return page.eval_on_selector_all(
        "#results-table tbody tr",
        """rows => rows.map(r => ({row: Number(r.dataset.row), label: r.dataset.label,
            confidence: r.dataset.confidence === "" ? null : Number(r.dataset.confidence),
            review: r.dataset.needsReview === "true", marked: r.classList.contains("needs-review"),
            badge: r.querySelector(".review-cell").textContent.trim(),
            shownLabel: r.querySelector(".label-cell").textContent.trim()}))""",
    )


def _upload(page: Any, name: str, data: bytes, mime: str = "text/csv") -> None:
    page.click("#tab-backlog")
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])


def _wait_done(page: Any) -> None:
    _expect(page.locator("#backlog-status")).to_contain_text("Done", timeout=TIMEOUT_MS)


def _wait_predicted(page: Any) -> None:
    """The single-ticket request of the last action has answered (the button is disabled meanwhile)."""
    _expect(page.locator("#submit")).to_be_enabled(timeout=TIMEOUT_MS)
    page.wait_for_selector("#result #label")


def _file_error(page: Any) -> str:
    _expect(page.locator("#file-error")).to_have_text(re.compile(r"\S"), timeout=TIMEOUT_MS)
    assert page.is_hidden("#results")
    return str(page.inner_text("#file-error"))


def _tab_to(page: Any, selector: str, limit: int = 40, key: str = "Tab") -> None:
    """Press Tab (or `key`) until the focused element matches `selector` (keyboard only: no clicks)."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    focused = page.evaluate("document.activeElement?.outerHTML.slice(0, 120)")
    raise AssertionError(f"{selector} not reached with Tab in {limit} presses (focus on {focused})")


def _open_file_chooser_by_keyboard(page: Any) -> Any:
    """Open the focused file input's chooser with Space, or with Enter where Space opened none.

    Both keys open a file input in Chromium. Once in a full CI run (not reproduced in 16 runs here, idle or
    beside two busy cores) Space opened no chooser within 20 s, so the chooser interception is armed before
    the key (Playwright subscribes fire-and-forget) and Enter is the second keyboard way in; the test still
    fails when no key opens one, and says where the focus was.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    assert page.evaluate("document.activeElement?.id") == "file"
    page.on("filechooser", _ignore)  # arms the browser's chooser interception now, not with the key press
    page.wait_for_timeout(100)
    try:
        for key in ("Space", "Enter"):
            try:
                with page.expect_file_chooser(timeout=TIMEOUT_MS / 2) as chooser:
                    page.keyboard.press(key)
                return chooser.value
            except PlaywrightTimeout:
                continue
        focused = page.evaluate("document.activeElement?.outerHTML.slice(0, 120)")
        raise AssertionError(f"neither Space nor Enter opened the file chooser (focus on {focused})")
    finally:
        page.remove_listener("filechooser", _ignore)


def _ignore(_: Any) -> None:
    return None


# ------------------------------------------------------------------------------------------ static rules


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        self.problems += [f"inline handler {n} on <{tag}>" for n in names if n.startswith("on")]
        for name, value in attrs:
            if name in {"src", "href"} and value and re.match(r"(https?:)?//", value):
                self.problems.append(f"external resource {value}")


def test_page_files_are_csp_safe_and_small() -> None:
    """No inline script/style/handlers, no external resource, nothing that a strict CSP would block."""
    finder = _InlineFinder()
    finder.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert finder.problems == []
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts, "the page's scripts are missing"
    for path in scripts:
        code = path.read_text(encoding="utf-8")
        for banned in (
            "innerHTML",
            "outerHTML =",
            "eval(",
            "new Function",
            'setAttribute("style"',
            "http://",
            "https://",
            "document.write",
        ):
            assert banned not in code, f"{path.name} uses {banned}"
    for path in [*scripts, *STATIC.glob("*.css"), STATIC / "index.html"]:
        assert path.stat().st_size < 24_000, f"{path.name} is not a small file any more"


@pytest.mark.slow
def test_page_and_static_files_are_served_with_a_strict_csp(server: ServerProcess) -> None:
    for path, kind in [("/", "text/html"), ("/static/app.js", "javascript"), ("/static/app.css", "text/css")]:
        response = httpx.get(f"{server.base_url}{path}")
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], (path, response.headers["content-type"])
        assert "default-src 'self'" in response.headers.get("content-security-policy", ""), path


# --------------------------------------------------------------------------------------------- one ticket


@pytest.mark.browser
@pytest.mark.slow
def test_one_ticket_shows_label_bars_flags_and_version(page: Any, server: ServerProcess, shots: Path) -> None:
    info = httpx.get(f"{server.base_url}/info").json()
    labels = info["labels"]
    subject, text = "Shop down", "Our online shop is down since 8:00 and no customer can pay. Fix it now!"
    expected = httpx.post(f"{server.base_url}/predict", json={"text": text, "subject": subject}).json()

    page.fill("#subject", subject)
    page.fill("#text", text)
    page.click("#submit")
    page.wait_for_selector("#label")
    assert page.inner_text("#label").strip() == expected["label"]
    assert page.inner_text("#confidence") == f"{expected['confidence'] * 100:.1f}% confident"
    rows = page.eval_on_selector_all(
        "#scores tbody tr",
        "rs => rs.map(r => [r.dataset.label, Number(r.querySelector('.score').dataset.score),"
        " Number(r.querySelector('meter').value)])",
    )
    assert [label for label, _, _ in rows] == labels
    for label, score, bar in rows:
        assert score == pytest.approx(expected["scores"][label], abs=1e-9)
        assert bar == pytest.approx(expected["scores"][label], abs=1e-9)
    assert page.is_visible("#needs-review") == expected["needs_review"]
    assert page.inner_text("#result-model") == expected["model_version"]
    assert page.inner_text("#model-version") == expected["model_version"]
    assert expected["truncated"] is False and not page.is_visible("#truncated")

    # a ticket longer than max_length tokens: the truncation flag
    long_text = " ".join([text] * 30)
    assert httpx.post(f"{server.base_url}/predict", json={"text": long_text}).json()["truncated"] is True
    page.fill("#subject", "")
    page.fill("#text", long_text)
    page.click("#submit")
    page.wait_for_selector("#truncated")
    assert f"longer than the model reads ({info['max_length']} tokens)" in page.inner_text("#truncated")

    # the five examples, one click each
    langs = page.eval_on_selector_all("button.example", "bs => bs.map(b => b.dataset.lang)")
    assert langs == ["en", "de", "es", "fr", "pt"]
    subjects = set()
    for lang in langs:
        page.click(f"button.example[data-lang={lang}]")
        _wait_predicted(page)
        subjects.add(page.input_value("#subject"))
        answer = httpx.post(
            f"{server.base_url}/predict",
            json={"text": page.input_value("#text"), "subject": page.input_value("#subject")},
        ).json()
        assert page.inner_text("#label").strip() == answer["label"], lang
        assert page.is_visible("#needs-review") == answer["needs_review"], lang
        assert page.is_visible("#no-review") != answer["needs_review"], lang
        if answer["needs_review"]:
            threshold = info["review"]["threshold"]
            assert f"below the review threshold {threshold * 100:.1f}%" in page.inner_text("#needs-review")
            page.screenshot(path=str(shots / "one-ticket-needs-review.png"), full_page=True)
    assert len(subjects) == 5 and "" not in subjects
    page.screenshot(path=str(shots / "one-ticket.png"), full_page=True)

    # the server's error message, not a blank result: a ticket over MAX_TEXT_CHARS is refused with 413
    page.fill("#text", "x" * (MAX_TEXT_CHARS + 1))
    page.click("#submit")
    page.wait_for_selector("#error")
    assert "413" in page.inner_text("#error") and str(MAX_TEXT_CHARS) in page.inner_text("#error")
    page.fill("#text", "   ")
    page.click("#submit")
    assert "must not be empty" in page.inner_text("#error")
    page.screenshot(path=str(shots / "one-ticket-error.png"), full_page=True)


# ------------------------------------------------------------------------------------------------ backlog


@pytest.mark.browser
@pytest.mark.slow
def test_backlog_of_50_matches_the_batch_api_sorts_filters_and_downloads(
    page: Any, server: ServerProcess, shots: Path, tmp_path: Path
) -> None:
    sample = _sample_rows(50)
    header = ["subject", "body", "queue", "priority", "language"]
    cells = [[r[c] for c in header] for r in sample]
    expected = _batch(server, [_item(r["subject"], r["body"]) for r in sample])
    labels = list(expected[0]["scores"])
    batch_calls: list[int] = []
    page.on(
        "request",
        lambda r: (
            batch_calls.append(len(json.loads(r.post_data)["items"]))
            if r.url.endswith("/predict/batch")
            else None
        ),
    )

    _upload(page, "backlog.csv", _csv_bytes(header, cells))
    _wait_done(page)
    assert batch_calls == [16, 16, 16, 2], "the page must chunk within MAX_BATCH_ITEMS (from /info)"
    assert page.eval_on_selector("#progress", "p => [p.value, p.max]") == [50, 50]

    shown = _table(page)
    assert [r["row"] for r in shown] == list(range(1, 51))
    for row, want in zip(shown, expected, strict=True):
        assert row["label"] == want["label"] == row["shownLabel"], row
        assert row["confidence"] == pytest.approx(want["confidence"], abs=1e-9), row
        assert row["review"] is row["marked"] is want["needs_review"], row
        assert row["badge"] == ("Needs review" if want["needs_review"] else "")
    n_review = sum(p["needs_review"] for p in expected)
    assert 0 < n_review < 50, "the review threshold should split this sample"
    assert page.inner_text("#review-count") == str(n_review)
    given = [r["priority"] for r in sample]
    agree = sum(g == p["label"] for g, p in zip(given, expected, strict=True))
    assert f"on {agree} of 50" in page.inner_text("#agreement")
    page.screenshot(path=str(shots / "backlog.png"), full_page=True)

    # sorting: priority (most urgent first, then most confident), again (reversed), confidence
    rank = {label: i for i, label in enumerate(labels)}  # the tiny bundle's labels are low, medium, high
    by_priority = sorted(
        range(50), key=lambda i: (-rank[expected[i]["label"]], -expected[i]["confidence"], i)
    )
    page.click("th[data-sort=priority] button")
    assert page.get_attribute("th[data-sort=priority]", "aria-sort") == "descending"
    assert [r["row"] - 1 for r in _table(page)] == by_priority
    page.click("th[data-sort=priority] button")
    assert page.get_attribute("th[data-sort=priority]", "aria-sort") == "ascending"
    ascending = sorted(range(50), key=lambda i: (rank[expected[i]["label"]], expected[i]["confidence"], i))
    assert [r["row"] - 1 for r in _table(page)] == ascending
    page.click("th[data-sort=confidence] button")
    assert page.get_attribute("th[data-sort=priority]", "aria-sort") == "none"
    confidences = [r["confidence"] for r in _table(page)]
    assert confidences == sorted(confidences, reverse=True)

    # the needs-review filter
    page.check("#review-only")
    filtered = _table(page)
    assert len(filtered) == n_review and all(r["review"] for r in filtered)
    page.screenshot(path=str(shots / "backlog-needs-review.png"), full_page=True)
    page.uncheck("#review-only")
    assert len(_table(page)) == 50

    # download: the file's own table back, in file order, with the predictions added
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "backlog-triaged.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with target.open(encoding="utf-8-sig", newline="") as f:
        back = list(csv.DictReader(f))
    assert len(back) == 50
    assert list(back[0])[: len(header)] == header
    for row, original, want in zip(back, sample, expected, strict=True):
        assert all(row[c] == original[c] for c in header), row
        assert row["predicted_priority"] == want["label"]
        assert float(row["confidence"]) == pytest.approx(want["confidence"], abs=1e-9)
        assert row["needs_review"] == str(want["needs_review"]).lower()
        assert row["truncated"] == str(want["truncated"]).lower()
        for label in labels:
            assert float(row[f"score_{label}"]) == pytest.approx(want["scores"][label], abs=1e-9)
        assert row["model_version"] == want["model_version"]


@pytest.mark.browser
@pytest.mark.slow
def test_backlog_jsonl_by_drop_with_429_retried_and_rows_the_server_refuses(
    page: Any, server: ServerProcess
) -> None:
    """JSONL dropped on the drop zone; the first /predict/batch answer is a 429 (the browser sees it, the
    server is real); a ticket over MAX_TEXT_CHARS is cut to the limit, an empty one is not sent."""
    sample = _sample_rows(5)
    records: list[dict[str, Any]] = [
        {"subject": r["subject"], "body": r["body"], "id": i} for i, r in enumerate(sample)
    ]
    records.append({"subject": "", "body": "   "})
    records.append({"subject": "Long", "body": "Our printer fails every morning. " * 200})
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    seen: list[str] = []

    def busy_once(route: Any) -> None:
        seen.append(route.request.url)
        if len(seen) == 1:
            body = {
                "status_code": 429,
                "error_type": "overloaded",
                "detail": "the server is busy: queue full",
            }
            route.fulfill(status=429, headers={"Retry-After": "1"}, json=body)
        else:
            route.continue_()

    page.route("**/predict/batch", busy_once)
    page.click("#tab-backlog")
    dt = page.evaluate_handle(
        """text => { const dt = new DataTransfer();
                     dt.items.add(new File([text], "tickets.jsonl", {type: "application/x-ndjson"}));
                     return dt; }""",
        data,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dt})
    _expect(page.locator("#backlog-status")).to_contain_text("retrying in 1 s", timeout=TIMEOUT_MS)
    _wait_done(page)
    assert len(seen) == 2
    shown = {r["row"]: r for r in _table(page)}
    assert len(shown) == 7
    sent = [_item(r["subject"], r["body"]) for r in records[:5]]
    long_body = records[6]["body"]
    sent.append({"text": long_body[: MAX_TEXT_CHARS - len("Long")], "subject": "Long"})
    expected = _batch(server, sent)
    for row, want in zip([*range(1, 6), 7], expected, strict=True):
        assert shown[row]["label"] == want["label"]
        assert shown[row]["confidence"] == pytest.approx(want["confidence"], abs=1e-9)
    assert shown[6]["label"] == "" and shown[6]["confidence"] is None
    notes = page.eval_on_selector_all(
        "#results-table tbody tr .flags-cell", "cs => cs.map(c => c.textContent)"
    )
    assert "empty ticket" in notes[5] and "Cut to the server's text limit" in notes[6]
    assert page.inner_text("#backlog-status").startswith("Done: 6 of 7 tickets predicted")


BAD_FILES: list[tuple[str, str, bytes | None, list[str]]] = [
    (
        "missing column",
        "export.csv",
        b"id,message\n1,hello\n",
        ["no \u201cbody\u201d column", "\u201cid\u201d, \u201cmessage\u201d"],
    ),
    (
        "not utf-8",
        "latin1.csv",
        "subject,body\nok,fine\nSt\u00f6rung,kaputt\n".encode("latin-1"),
        ["not UTF-8", "line 3"],
    ),
    ("utf-16", "excel.csv", "subject,body\nA,B\n".encode("utf-16"), ["UTF-16"]),
    ("too many tickets", "big.csv", b"body\n" + b"ticket\n" * 10_001, ["too large: 10,001 tickets"]),
    ("bad json line", "t.jsonl", b'{"body": "a"}\n{"body": oops}\n', ["Line 2 is not valid JSON"]),
    ("no tickets", "header.csv", b"subject,body\n", ["no tickets"]),
    ("unclosed quote", "q.csv", b'subject,body\n"a,b\n', ["never ends"]),
    ("too large", "huge.csv", None, ["too large: 10.0 MB", "up to 10.0 MB"]),
]


@pytest.mark.browser
@pytest.mark.slow
def test_backlog_bad_files_say_what_is_wrong(page: Any, shots: Path, tmp_path: Path) -> None:
    page.click("#tab-backlog")
    for name, filename, data, wanted in BAD_FILES:
        if data is None:  # over the 10 MB limit: a real file on disk (a path, not an in-memory buffer)
            path = tmp_path / filename
            path.write_bytes(b"subject,body\n" + b"x" * (10 * 1024 * 1024))
            page.set_input_files("#file", str(path))
        else:
            page.set_input_files("#file", files=[{"name": filename, "mimeType": "text/csv", "buffer": data}])
        message = _file_error(page)
        for part in wanted:
            assert part in message, (name, message)
        if name == "missing column":
            page.screenshot(path=str(shots / "backlog-bad-file.png"), full_page=True)
        page.evaluate("document.getElementById('file-error').replaceChildren()")
    # a good file afterwards clears the message and works (';'-separated, as European spreadsheets save)
    page.set_input_files(
        "#file",
        files=[
            {
                "name": "ok.csv",
                "mimeType": "text/csv",
                "buffer": _csv_bytes(["Subject", "Body"], [["Login", "I cannot log in."]], delimiter=";"),
            }
        ],
    )
    _wait_done(page)
    assert page.is_hidden("#file-error") and len(_table(page)) == 1


# --------------------------------------------------------------------------------------- about + keyboard


@pytest.mark.browser
@pytest.mark.slow
def test_about_panel_shows_info(page: Any, server: ServerProcess, shots: Path) -> None:
    info = httpx.get(f"{server.base_url}/info").json()
    page.click("#tab-about")
    assert page.url.endswith("#about")
    facts = page.inner_text("#model-facts")
    assert info["model_version"] in facts and ", ".join(info["labels"]) in facts
    assert str(info["max_length"]) in facts and "int8 dynamic" in facts
    fp32 = info["metrics"]["fp32"]
    row = page.inner_text("#gate-metrics tbody tr:first-child")
    assert f"{fp32['macro_f1']:.3f}" in row and f"{fp32['accuracy'] * 100:.1f}%" in row
    assert page.locator("#language-metrics tbody tr").count() == len(fp32["per_language_macro_f1"])
    assert f"{info['review']['threshold'] * 100:.1f}%" in page.inner_text("#confidence-facts")
    assert str(BATCH_ITEMS) in page.inner_text("#limit-facts")
    page.screenshot(path=str(shots / "about.png"), full_page=True)
    # a deep link opens the view
    page.goto(f"{server.base_url}/#about")
    page.wait_for_selector("#view-about:not([hidden])")


@pytest.mark.browser
@pytest.mark.slow
def test_page_works_without_info(browser: Any, server: ServerProcess) -> None:
    """Against a server without GET /info (404, as before issue 12): no about tab, the default chunk of 64
    is refused with 413 by the real server (MAX_BATCH_ITEMS=16) and the page continues with its limit."""
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.route("**/info", lambda route: route.fulfill(status=404, json={"detail": "Not Found"}))
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{server.base_url}/")
        tab.wait_for_selector("body[data-ready]")
        assert tab.get_attribute("body", "data-info") == "no" and tab.is_hidden("#tab-about")
        assert (
            tab.inner_text("#model-version") == httpx.get(f"{server.base_url}/ready").json()["model_version"]
        )
        sizes: list[int] = []
        tab.on(
            "request",
            lambda r: (
                sizes.append(len(json.loads(r.post_data)["items"])) if r.url.endswith("/batch") else None
            ),
        )
        sample = _sample_rows(50)
        _upload(
            tab, "fifty.csv", _csv_bytes(["subject", "body"], [[r["subject"], r["body"]] for r in sample])
        )
        _wait_done(tab)
        assert sizes == [50, 16, 16, 16, 2]
        expected = _batch(server, [_item(r["subject"], r["body"]) for r in sample])
        assert [r["label"] for r in _table(tab)] == [p["label"] for p in expected]
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_keyboard_only(page: Any, server: ServerProcess, shots: Path) -> None:
    """Tabs by arrow keys, an example by Enter, the form by typing + Ctrl+Enter, a file by the keyboard's file
    chooser, sorting and filtering by Enter/Space: no mouse."""
    _tab_to(page, "#tab-single")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-backlog"
    assert page.is_visible("#view-backlog") and page.is_hidden("#view-single")
    page.keyboard.press("ArrowLeft")
    assert page.is_visible("#view-single")

    _tab_to(page, "button.example[data-lang=de]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result #label")
    _tab_to(page, "#subject")
    page.keyboard.press("Control+A")
    page.keyboard.type("Kein Zugang")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("Wir können uns seit heute nicht mehr anmelden. Bitte dringend helfen.")
    page.keyboard.press("Control+Enter")
    _wait_predicted(page)
    want = httpx.post(
        f"{server.base_url}/predict", json={"text": page.input_value("#text"), "subject": "Kein Zugang"}
    ).json()
    assert page.inner_text("#label").strip() == want["label"]
    page.screenshot(path=str(shots / "keyboard-one-ticket.png"), full_page=True)

    _tab_to(page, "#tab-single", key="Shift+Tab")
    page.keyboard.press("End")
    assert page.is_visible("#view-about")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    assert page.is_visible("#view-backlog")
    sample = _sample_rows(8)
    _tab_to(page, "#file")
    chooser = _open_file_chooser_by_keyboard(page)
    chooser.set_files(
        files=[
            {
                "name": "eight.csv",
                "mimeType": "text/csv",
                "buffer": _csv_bytes(["subject", "body"], [[r["subject"], r["body"]] for r in sample]),
            }
        ]
    )
    _wait_done(page)
    _tab_to(page, "th[data-sort=confidence] button")
    page.keyboard.press("Enter")
    assert page.get_attribute("th[data-sort=confidence]", "aria-sort") == "descending"
    confidences = [r["confidence"] for r in _table(page)]
    assert confidences == sorted(confidences, reverse=True)
    _tab_to(page, "#review-only", key="Shift+Tab")
    page.keyboard.press("Space")
    assert page.is_checked("#review-only")
    assert all(r["review"] for r in _table(page))
    _tab_to(page, "#download")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert info.value.suggested_filename == "eight-triaged.csv"
    page.screenshot(path=str(shots / "keyboard-backlog.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.slow
def test_every_view_passes_axe_wcag_aa(page: Any) -> None:
    """axe-core (WCAG 2.x A and AA rules: contrast, labels, ARIA, ...) on each view with content in it."""
    axe_module = pytest.importorskip(
        "axe_playwright_python.sync_playwright", reason="axe-playwright-python missing"
    )
    axe = axe_module.Axe()
    options = {
        "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"],
    }

    def check(view: str) -> None:
        results = axe.run(page, options=options)
        assert results.violations_count == 0, f"{view}: {results.generate_report()}"

    page.click("button.example[data-lang=en]")
    page.wait_for_selector("#result #label")
    check("one ticket")
    sample = _sample_rows(20)
    _upload(
        page,
        "twenty.csv",
        _csv_bytes(
            ["subject", "body", "priority"], [[r["subject"], r["body"], r["priority"]] for r in sample]
        ),
    )
    _wait_done(page)
    check("backlog")
    page.set_input_files(
        "#file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"}]
    )
    _file_error(page)
    check("backlog with an error")
    page.click("#tab-about")
    check("about")


@pytest.mark.browser
@pytest.mark.slow
def test_page_modules_unit(page: Any) -> None:
    """The pure functions of the page's modules, in the browser that runs them."""
    inputs = {
        "csv": 'a,b\r\n"x, ""y""","line1\nline2"\r\n\r\n3,4',
        "semicolon": "subject;body\nA;B\n",
        "escaped": "one\\ntwo\\r\\nthree\r\nfour",
        "cells": ["=SUM(A1)", "a,b", 'say "hi"', " pad", "plain"],
        "tricky": ["x\ny", 'q"q'],
        "schema": "Subject,BODY,answer,priority\nS,B\\nC,A,High\n",
    }
    result = page.evaluate(
        """async (i) => {
          const t = await import("./static/tablefile.js");
          const api = await import("./static/api.js");
          return {
            csv: t.parseCsv(i.csv),
            semicolon: t.parseCsv(i.semicolon),
            unescaped: t.unescapeText(i.escaped),
            written: t.writeCsv([i.cells]),
            roundTrip: t.parseCsv(t.writeCsv([i.tricky])),
            schema: t.readTickets("d.csv", i.schema).rows[0],
            retry: [api.retryAfterSeconds("3"), api.retryAfterSeconds(null), api.retryAfterSeconds("soon")],
            message: [api.errorMessage(429, {detail: "busy"}),
                      api.errorMessage(422, {message: "bad", error_type: "validation"}),
                      api.errorMessage(500, "<html>oops</html>"), api.errorMessage(502, null)],
          };
        }""",
        inputs,
    )
    assert result["csv"] == [["a", "b"], ['x, "y"', "line1\nline2"], ["3", "4"]]
    assert result["semicolon"] == [["subject", "body"], ["A", "B"]]
    assert result["unescaped"] == "one\ntwo\nthree\nfour"
    assert result["written"] == '\'=SUM(A1),"a,b","say ""hi"""," pad",plain\r\n'
    assert result["roundTrip"] == [["x\ny", 'q"q']]
    assert result["schema"] == {
        "row": 1,
        "cells": ["S", "B\\nC", "A", "High"],
        "subject": "S",
        "body": "B\nC",
        "given": "high",
    }
    assert result["retry"] == [3, None, None]
    assert result["message"] == [
        "Error 429: busy",
        "Error 422: bad",
        "Error 500: <html>oops</html>",
        "Error 502: the request failed",
    ]
