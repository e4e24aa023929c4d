// "About the model": what GET /info says (labels, max length, quantization, gate metrics, calibration, review).
"use strict";

import {el, percent} from "./dom.js";

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function show(value) {
  if (value === null || value === undefined) return "\u2014";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(4);
  if (Array.isArray(value)) return value.map(show).join(", ");
  if (isObject(value)) return Object.entries(value).map(([k, v]) => `${k} ${show(v)}`).join(" \u00b7 ");
  return String(value);
}

function facts(id, rows) {
  const kept = rows.filter(([, v]) => v !== undefined);
  return el("dl", {class: "facts", id}, kept.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, show(v))]));
}

function section(title, id, content) {
  return el("section", {class: "about-part", "aria-labelledby": id}, [el("h3", {id}, title), content]);
}

function quantization(q) {
  if (q === null) return "none (fp32)";
  if (isObject(q)) return [q.dtype, q.mode, q.isa && `for ${q.isa}`].filter(Boolean).join(" ") || show(q);
  return q;
}

/** {fp32: {macro_f1, accuracy, n}, int8: {...}, ...} -> a table; other shapes -> a facts list. */
function metricsTable(metrics) {
  const models = Object.entries(metrics).filter(([, m]) => isObject(m) && ("macro_f1" in m || "accuracy" in m));
  if (!models.length) return facts("gate-metrics", Object.entries(metrics));
  const rows = models.map(([name, m]) => el("tr", {}, [
    el("th", {scope: "row"}, name),
    el("td", {class: "num"}, typeof m.macro_f1 === "number" ? m.macro_f1.toFixed(3) : "\u2014"),
    el("td", {class: "num"}, typeof m.accuracy === "number" ? percent(m.accuracy) : "\u2014"),
    el("td", {class: "num"}, show(m.n)),
  ]));
  return el("table", {id: "gate-metrics", class: "data"}, [
    el("caption", {}, "Validation metrics measured by the export gate"),
    el("thead", {}, el("tr", {}, ["model", "macro-F1", "accuracy", "examples"].map(
      (h, i) => el("th", {scope: "col", class: i ? "num" : null}, h)))),
    el("tbody", {}, rows),
  ]);
}

/** Macro-F1 per language and model (metrics.<model>.per_language_macro_f1), if the gate measured it. */
function languageTable(metrics) {
  const models = Object.entries(metrics).filter(([, m]) => isObject(m?.per_language_macro_f1));
  if (!models.length) return null;
  const languages = [...new Set(models.flatMap(([, m]) => Object.keys(m.per_language_macro_f1)))].sort();
  return el("table", {id: "language-metrics", class: "data"}, [
    el("caption", {}, "Macro-F1 per language"),
    el("thead", {}, el("tr", {}, [el("th", {scope: "col"}, "language"),
      ...models.map(([name]) => el("th", {scope: "col", class: "num"}, name))])),
    el("tbody", {}, languages.map((lang) => el("tr", {}, [
      el("th", {scope: "row"}, lang),
      ...models.map(([, m]) => {
        const v = m.per_language_macro_f1[lang];
        return el("td", {class: "num"}, typeof v === "number" ? v.toFixed(3) : "\u2014");
      }),
    ]))),
  ]);
}

function agreementFacts(a) {
  if (!isObject(a)) return null;
  return facts("agreement-facts", [
    ["int8 agrees with fp32", typeof a.raw === "number" ? percent(a.raw) : a.raw],
    ["... on clear cases", typeof a.non_tie === "number" ? percent(a.non_tie) : a.non_tie],
    ["largest logit difference", a.max_abs_logit_diff],
  ]);
}

function checksList(checks) {
  return el("ul", {class: "checks", id: "gate-checks"}, checks.map((c) => el("li", {}, [
    el("span", {class: c.passed ? "badge ok" : "badge fail"}, c.passed ? "pass" : "fail"), " ",
    `${c.name}: ${show(c.value)} (${c.threshold})`,
  ])));
}

/** Fill #about from /info; every field is optional. */
export function initAbout(info) {
  const about = document.getElementById("about");
  const limits = info.limits ?? {};
  const parts = [
    facts("model-facts", [
      ["model version", info.model_version],
      ["labels", info.labels],
      ["max length (tokens)", info.max_length],
      ["quantization", info.quantization === undefined ? undefined : quantization(info.quantization)],
      ["model", info.model_name],
      ["runs on", info.device === undefined ? undefined
        : [info.device, info.dtype, ...(info.providers ?? [])].filter(Boolean).join(" \u00b7 ")],
      ["created", info.created_at],
    ]),
  ];
  const gate = isObject(info.gate) ? info.gate : {};
  const metrics = info.gate_metrics ?? info.metrics ?? gate.metrics;
  const checks = Array.isArray(gate.checks) ? gate.checks : null;
  if (isObject(metrics) || checks || gate.passed !== undefined) {
    // /info's metrics are the export gate's: the model had to reach them before it could be served
    const content = el("div", {}, [
      el("p", {class: "muted"}, "Measured on the validation split by the export gate; a bundle is only " +
        "written when the ONNX model matches the trained one."),
      gate.passed === undefined ? null : el("p", {}, [
        "The export gate ", el("strong", {}, gate.passed ? "passed" : "failed"),
        gate.n_examples ? ` on ${show(gate.n_examples)} validation examples.` : "."]),
      isObject(metrics) ? metricsTable(metrics) : null,
      isObject(metrics) ? languageTable(metrics) : null,
      isObject(metrics) ? agreementFacts(metrics.agreement) : null,
      checks ? checksList(checks) : null,
    ]);
    parts.push(section("Quality gate", "about-gate", content));
  }
  if (isObject(info.calibration) || isObject(info.review)) {
    const c = info.calibration ?? {};
    const r = info.review ?? {};
    parts.push(section("Confidence", "about-confidence", facts("confidence-facts", [
      ["calibration temperature", c.temperature],
      ["calibrated on", c.fitted_on === undefined ? undefined : `${c.fitted_on}${c.n ? ` (${c.n} tickets)` : ""}`],
      ["review below confidence", typeof r.threshold === "number" ? percent(r.threshold) : r.threshold],
      ["target accuracy above it", typeof r.target_accuracy === "number" ? percent(r.target_accuracy) : r.target_accuracy],
    ])));
  } else if (info.review === null) {
    parts.push(section("Confidence", "about-confidence",
      el("p", {}, "This model has no review threshold: no ticket is flagged \u201cneeds review\u201d.")));
  }
  if (Object.keys(limits).length) {
    parts.push(section("Server limits", "about-limits", facts("limit-facts", Object.entries(limits))));
  }
  about.replaceChildren(...parts);
}
