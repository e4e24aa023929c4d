// Small DOM and formatting helpers shared by the views (never HTML strings: text is always set as text).
"use strict";

/** el("td", {class: "x", "data-row": 3}, "text" | node | [nodes]) */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "hidden" && value === true) node.hidden = true;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function percent(x, digits = 1) {
  return `${(x * 100).toFixed(digits)}%`;
}

// Known priority words, least to most urgent; other label sets keep the model's own label order.
const URGENCY = ["very_low", "very low", "lowest", "low", "normal", "medium", "moderate", "high", "urgent",
  "highest", "critical", "very_high"];

/** A sort key for a label: higher = more urgent. */
export function urgencyRank(label, labels) {
  const known = URGENCY.indexOf(String(label).toLowerCase());
  if (labels.every((l) => URGENCY.includes(String(l).toLowerCase()))) return known;
  return labels.indexOf(label);
}

/** A CSS-safe class for a label's badge: prio-high, prio-medium, prio-low, else prio-other. */
export function labelClass(label) {
  const known = {low: "low", very_low: "low", medium: "medium", normal: "medium", high: "high",
    urgent: "high", critical: "high"};
  return `badge prio-${known[String(label).toLowerCase()] ?? "other"}`;
}

export function badge(label, attrs = {}) {
  return el("span", {class: labelClass(label), ...attrs}, label);
}

/** The probability bar of one label: a <meter> (native, announced by screen readers) and its number. */
export function scoreMeter(label, score) {
  return el("meter", {min: 0, max: 1, value: score, "aria-label": `${label}: ${percent(score)}`});
}
