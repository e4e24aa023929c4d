// "Backlog": a CSV/JSONL file -> /predict/batch in chunks (progress bar) -> a sortable, filterable table -> CSV.
"use strict";

import {ApiError, postJsonRetrying, MAX_RETRIES} from "./api.js";
import {FileProblem, formatBytes, readTicketFile, writeCsv} from "./tablefile.js";
import {badge, el, percent, scoreMeter, urgencyRank} from "./dom.js";

const DEFAULT_BATCH_ITEMS = 64; // the server's default MAX_BATCH_ITEMS, used until /info says otherwise
const DEFAULT_MAX_CHARS = 20_000; // the server's default MAX_TEXT_CHARS
const EXCERPT_CHARS = 160;
const DEFAULT_DIRECTION = {row: "ascending", priority: "descending", confidence: "descending"};

const needsReview = (r) => r.prediction?.needs_review === true;

function limitsFrom(info) {
  const limits = info?.limits ?? {};
  const items = Number(limits.max_batch_items ?? info?.max_batch_items) || DEFAULT_BATCH_ITEMS;
  const chars = Number(limits.max_text_chars ?? info?.max_text_chars) || DEFAULT_MAX_CHARS;
  return {items: Math.max(1, items), chars: Math.max(1, chars)};
}

/** What to send for one row: body as text (the subject when the body is empty), cut to MAX_TEXT_CHARS. */
function requestItem(r, maxChars) {
  let text = r.body;
  let subject = r.subject.trim() ? r.subject : null;
  if (!text.trim()) [text, subject] = [r.subject, null];
  if (!text.trim()) return null;
  const room = maxChars - (subject?.length ?? 0);
  if (text.length > room) {
    text = text.slice(0, Math.max(room, 1));
    if (/[\ud800-\udbff]$/.test(text)) text = text.slice(0, -1); // never send half a surrogate pair
    r.cut = true;
  }
  return subject === null ? {text} : {text, subject};
}

/** Wire the backlog view; `getInfo()` returns /info's answer or null. */
export function initBacklog(getInfo) {
  const $ = (id) => document.getElementById(id);
  const input = $("file");
  const drop = $("drop");
  const problem = $("file-error");
  const status = $("backlog-status");
  const progressBox = $("progress-box");
  const progress = $("progress");
  const progressText = $("progress-text");
  const stop = $("stop");
  const results = $("results");
  const summary = $("summary");
  const reviewOnly = $("review-only");
  const reviewCount = $("review-count");
  const table = $("results-table");
  const tbody = table.querySelector("tbody");
  const caption = table.querySelector("caption");
  const givenHeader = $("given-header");
  const download = $("download");

  let run = null; // {name, columns, hasGiven, rows, labels, modelVersion, controller, running}
  let order = {key: "row", direction: "ascending"};

  function say(message) { status.textContent = message; }
  function fail(message) {
    problem.replaceChildren(el("strong", {}, "This file cannot be used. "), message);
    problem.hidden = false;
  }

  async function handleFile(file) {
    if (!file) return;
    run?.controller.abort();
    problem.hidden = true;
    results.hidden = true;
    progressBox.hidden = true;
    say(`Reading ${file.name} (${formatBytes(file.size)})\u2026`);
    let parsed;
    try {
      parsed = await readTicketFile(file);
    } catch (err) {
      say("");
      fail(err instanceof FileProblem ? err.message : `The file could not be read (${err}).`);
      return;
    }
    await predictAll({name: file.name, ...parsed});
  }

  async function predictAll(parsed) {
    const limits = limitsFrom(getInfo());
    const controller = new AbortController();
    const current = {...parsed, labels: getInfo()?.labels ?? null, modelVersion: null, controller, running: true};
    run = current;
    let batchItems = limits.items;
    const pending = [];
    for (const r of current.rows) {
      Object.assign(r, {prediction: null, error: null, cut: false});
      const item = requestItem(r, limits.chars);
      if (item) pending.push({r, item});
      else r.error = "empty ticket (no subject and no body): not sent";
    }
    let done = current.rows.length - pending.length;
    const total = current.rows.length;
    const show = () => {
      progress.max = total;
      progress.value = done;
      progressText.textContent = `${done.toLocaleString("en")} of ${total.toLocaleString("en")} tickets`;
    };
    progressBox.hidden = false;
    stop.hidden = false;
    show();
    say(`Predicting ${total.toLocaleString("en")} tickets from ${current.name}\u2026`);

    const onWait = (seconds, attempt, err) => say(
      `The server is busy (${err.status}); retrying in ${seconds} s (attempt ${attempt} of ${MAX_RETRIES})\u2026`);

    async function send(chunk) {
      try {
        const {body} = await postJsonRetrying("predict/batch", {items: chunk.map((c) => c.item)},
          {signal: controller.signal, onWait});
        const predictions = body?.predictions;
        if (!Array.isArray(predictions) || predictions.length !== chunk.length) {
          throw new Error("the server's answer does not have one prediction per ticket");
        }
        chunk.forEach((c, i) => { c.r.prediction = predictions[i]; });
        current.modelVersion = predictions[0]?.model_version ?? current.modelVersion;
        current.labels ??= Object.keys(predictions[0]?.scores ?? {});
        done += chunk.length;
        show();
        if (current.running) say(`Predicting ${total.toLocaleString("en")} tickets from ${current.name}\u2026`);
      } catch (err) {
        if (!(err instanceof ApiError) || ![400, 413, 422].includes(err.status)) throw err;
        if (chunk.length === 1) { // this ticket itself is refused: keep its message, go on with the rest
          chunk[0].r.error = err.message.replace(/items\[\d+\]\./g, "");
          done += 1;
          show();
          return;
        }
        const limit = /MAX_BATCH_ITEMS/.test(err.message) && err.message.match(/limit is (\d+)/);
        if (limit) batchItems = Math.max(1, Number(limit[1]));
        const half = Math.min(batchItems, Math.ceil(chunk.length / 2));
        for (let at = 0; at < chunk.length; at += half) await send(chunk.slice(at, at + half));
      }
    }

    let outcome = "done";
    try {
      for (let at = 0; at < pending.length;) {
        const chunk = pending.slice(at, at + batchItems);
        await send(chunk);
        at += chunk.length;
      }
    } catch (err) {
      outcome = controller.signal.aborted ? "stopped" : "failed";
      if (outcome === "failed") {
        const message = err instanceof ApiError ? err.message : `the server could not be reached (${err})`;
        fail(`Predicting stopped after ${done} of ${total} tickets: ${message}`);
      }
    }
    current.running = false;
    if (run !== current) return; // a newer file replaced this one
    stop.hidden = true;
    const predicted = current.rows.filter((r) => r.prediction).length;
    if (outcome === "done") say(`Done: ${predicted.toLocaleString("en")} of ${total.toLocaleString("en")} tickets predicted.`);
    else if (outcome === "stopped") say(`Stopped: ${predicted} of ${total} tickets predicted.`);
    else say("");
    if (predicted > 0 || outcome === "done") showResults();
  }

  function compare(a, b) {
    const sign = order.direction === "ascending" ? 1 : -1;
    const missing = (r) => (r.prediction ? 0 : 1); // by priority or confidence: rows without one last
    if (order.key !== "row" && missing(a) !== missing(b)) return missing(a) - missing(b);
    let d = 0;
    if (order.key === "priority" && a.prediction) {
      d = urgencyRank(a.prediction.label, run.labels) - urgencyRank(b.prediction.label, run.labels);
      if (d === 0) d = a.prediction.confidence - b.prediction.confidence;
    } else if (order.key === "confidence" && a.prediction) {
      d = a.prediction.confidence - b.prediction.confidence;
    }
    return d !== 0 ? sign * d : order.key === "row" ? sign * (a.row - b.row) : a.row - b.row;
  }

  function ticketCell(r) {
    const flat = r.body.replace(/\s+/g, " ").trim();
    const body = flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}\u2026` : flat;
    return el("td", {class: "ticket"}, [
      r.subject ? el("span", {class: "subject"}, r.subject) : null,
      el("span", {class: "excerpt"}, body),
    ]);
  }

  function renderRow(r) {
    const p = r.prediction;
    const review = needsReview(r);
    const flags = [];
    if (p?.truncated) flags.push(el("span", {class: "badge neutral"}, "Truncated"));
    if (r.cut) flags.push(el("span", {class: "badge neutral"}, "Cut to the server's text limit"));
    if (r.error) flags.push(el("span", {class: "row-error"}, r.error));
    return el("tr", {
      "data-row": r.row,
      "data-label": p?.label ?? "",
      "data-confidence": p?.confidence ?? "",
      "data-needs-review": String(review),
      class: review ? "needs-review" : null,
    }, [
      el("td", {class: "num"}, r.row),
      ticketCell(r),
      el("td", {class: "label-cell"}, p ? badge(p.label) : "\u2014"),
      el("td", {class: "conf-cell"}, p ? [scoreMeter(p.label, p.confidence), " ",
        el("span", {class: "num"}, percent(p.confidence))] : "\u2014"),
      el("td", {class: "review-cell"}, review ? el("span", {class: "badge review"}, "Needs review") : ""),
      el("td", {class: "flags-cell"}, flags),
      run.hasGiven ? el("td", {class: "given-cell"}, r.given || "\u2014") : null,
    ]);
  }

  function renderSummary() {
    const predicted = run.rows.filter((r) => r.prediction);
    const counts = new Map();
    for (const r of predicted) counts.set(r.prediction.label, (counts.get(r.prediction.label) ?? 0) + 1);
    const labels = [...(run.labels ?? counts.keys())].sort(
      (a, b) => urgencyRank(b, run.labels ?? [...counts.keys()]) - urgencyRank(a, run.labels ?? [...counts.keys()]));
    const items = [el("li", {}, [el("strong", {}, predicted.length.toLocaleString("en")), " predicted"])];
    for (const label of labels) {
      items.push(el("li", {"data-count-label": label}, [badge(label), " ", el("strong", {}, counts.get(label) ?? 0)]));
    }
    const review = run.rows.filter(needsReview).length;
    items.push(el("li", {}, [el("strong", {id: "summary-review"}, review), " need review"]));
    const errors = run.rows.filter((r) => r.error).length;
    if (errors) items.push(el("li", {class: "row-error"}, [el("strong", {}, errors), " not predicted"]));
    if (run.hasGiven) {
      const comparable = predicted.filter((r) => r.given);
      const agree = comparable.filter((r) => r.given === String(r.prediction.label).toLowerCase()).length;
      if (comparable.length) {
        items.push(el("li", {id: "agreement"}, `the model agrees with the file's priority on ${agree} of ` +
          `${comparable.length} (${percent(agree / comparable.length, 0)})`));
      }
    }
    summary.replaceChildren(el("ul", {class: "summary"}, items));
    reviewCount.textContent = String(review);
  }

  function render() {
    const shown = run.rows.filter((r) => !reviewOnly.checked || needsReview(r)).sort(compare);
    tbody.replaceChildren(...shown.map(renderRow));
    caption.textContent = reviewOnly.checked
      ? `${shown.length} of ${run.rows.length} tickets from ${run.name}: only those that need review`
      : `${run.rows.length} tickets from ${run.name}`;
    for (const th of table.querySelectorAll("th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === order.key ? order.direction : "none");
    }
  }

  function showResults() {
    givenHeader.hidden = !run.hasGiven;
    renderSummary();
    render();
    results.hidden = false;
  }

  function downloadCsv() {
    if (!run) return;
    const labels = run.labels ?? [];
    const header = [...run.columns, "predicted_priority", "confidence", "needs_review", "truncated",
      ...labels.map((l) => `score_${l}`), "model_version", "triage_error"];
    const rows = run.rows.map((r) => {
      const p = r.prediction;
      return [...r.cells, p?.label ?? "", p ? String(p.confidence) : "", p ? String(needsReview(r)) : "",
        p ? String(Boolean(p.truncated || r.cut)) : "", ...labels.map((l) => (p ? String(p.scores?.[l] ?? "") : "")),
        p?.model_version ?? "", r.error ?? ""];
    });
    const blob = new Blob(["\ufeff", writeCsv([header, ...rows])], {type: "text/csv;charset=utf-8"});
    const url = URL.createObjectURL(blob);
    const stem = run.name.replace(/\.[^.]*$/, "") || "tickets";
    const link = el("a", {href: url, download: `${stem}-triaged.csv`, hidden: true});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  input.addEventListener("change", () => handleFile(input.files?.[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("dragging"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    handleFile(event.dataTransfer?.files?.[0]);
  });
  stop.addEventListener("click", () => run?.controller.abort());
  reviewOnly.addEventListener("change", () => run && render());
  download.addEventListener("click", downloadCsv);
  for (const th of table.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      const direction = order.key === key
        ? (order.direction === "ascending" ? "descending" : "ascending") : DEFAULT_DIRECTION[key];
      order = {key, direction};
      if (run) render();
    });
  }
}
