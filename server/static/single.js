// "One ticket": subject + text -> priority, the probability of every label as bars, review and truncation flags.
"use strict";

import {postJson, ApiError} from "./api.js";
import {el, percent, badge, scoreMeter} from "./dom.js";
import {EXAMPLES} from "./examples.js";

function reviewNote(prediction, info) {
  const threshold = info?.review?.threshold;
  const why = typeof threshold === "number"
    ? `Its confidence ${percent(prediction.confidence)} is below the review threshold ${percent(threshold)}`
    : "Its confidence is below the model's review threshold";
  return `${why}, so a person should check this priority.`;
}

function renderPrediction(prediction, requestId, info) {
  const needsReview = prediction.needs_review === true;
  const flags = el("div", {class: "flags"});
  if (needsReview) {
    flags.append(el("p", {id: "needs-review", class: "flag flag-review"}, [
      el("span", {class: "badge review"}, "Needs review"), " ", reviewNote(prediction, info)]));
  }
  if (prediction.truncated) {
    const length = info?.max_length ? ` (${info.max_length} tokens)` : "";
    flags.append(el("p", {id: "truncated", class: "flag flag-truncated"}, [
      el("span", {class: "badge neutral"}, "Truncated"), " ",
      `The ticket is longer than the model reads${length}: only its beginning was used.`]));
  }
  const rows = Object.entries(prediction.scores).map(([label, score]) => el(
    "tr", {"data-label": label, class: label === prediction.label ? "top" : null}, [
      el("th", {scope: "row"}, label),
      el("td", {class: "bar-cell"}, scoreMeter(label, score)),
      el("td", {class: "score num", "data-score": score}, percent(score)),
    ]));
  const table = el("table", {id: "scores", class: "scores"}, [
    el("caption", {}, "Probability of every label"),
    el("thead", {}, el("tr", {}, [
      el("th", {scope: "col"}, "Label"), el("th", {scope: "col"}, "Probability"),
      el("th", {scope: "col", class: "num"}, "Value")])),
    el("tbody", {}, rows),
  ]);
  return [
    el("div", {class: "verdict"}, [
      el("span", {class: "verdict-title"}, "Priority"),
      badge(prediction.label, {id: "label"}),
      el("span", {id: "confidence", class: "confidence"}, `${percent(prediction.confidence)} confident`),
      prediction.needs_review === false && typeof info?.review?.threshold === "number"
        ? el("span", {class: "badge ok small-badge", id: "no-review"}, "No review needed") : null,
    ]),
    flags,
    table,
    el("p", {class: "muted small"}, [
      "model ", el("code", {id: "result-model"}, prediction.model_version),
      requestId ? [" \u00b7 request ", el("code", {}, requestId)] : null,
    ]),
  ];
}

/** Wire the single-ticket form; `getInfo()` returns /info's answer or null. */
export function initSingle(getInfo) {
  const form = document.getElementById("single-form");
  const subject = document.getElementById("subject");
  const text = document.getElementById("text");
  const button = document.getElementById("submit");
  const result = document.getElementById("result");

  async function predict() {
    if (!text.value.trim()) {
      result.replaceChildren(el("p", {id: "error", class: "error", role: "alert"},
        "Type or paste the ticket text first (it must not be empty)."));
      text.focus();
      return;
    }
    button.disabled = true;
    result.setAttribute("aria-busy", "true");
    result.replaceChildren(el("p", {class: "muted"}, "Predicting\u2026"));
    const payload = subject.value.trim() ? {text: text.value, subject: subject.value} : {text: text.value};
    try {
      const {body, response} = await postJson("predict", payload);
      result.replaceChildren(...renderPrediction(body, response.headers.get("X-Request-ID"), getInfo()));
    } catch (err) {
      const message = err instanceof ApiError ? err.message : `The server could not be reached (${err}).`;
      result.replaceChildren(el("p", {id: "error", class: "error", role: "alert"}, message));
    } finally {
      button.disabled = false;
      result.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); predict(); });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); predict(); }
  });

  const examples = document.getElementById("examples");
  for (const example of EXAMPLES) {
    const b = el("button", {type: "button", class: "example", "data-lang": example.lang}, [
      el("span", {lang: example.lang}, example.name), el("span", {class: "visually-hidden"}, " example")]);
    b.addEventListener("click", () => {
      subject.value = example.subject;
      text.value = example.text;
      predict();
    });
    examples.append(b);
  }
}
