// The page's entry point: tabs (WAI-ARIA pattern), model facts from GET /info and GET /ready, the three views.
"use strict";

import {getJson} from "./api.js";
import {initAbout} from "./about.js";
import {initBacklog} from "./backlog.js";
import {initSingle} from "./single.js";

let info = null;
const getInfo = () => info;

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const visible = () => tabs.filter((t) => !t.hidden);

  function select(tab, {focus = false, updateHash = true} = {}) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    if (updateHash) history.replaceState(null, "", `#${tab.dataset.view}`);
  }

  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const list = visible();
      const at = list.indexOf(tab);
      const next = {ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: list.length - 1}[event.key];
      if (next === undefined) return;
      event.preventDefault();
      select(list[(next + list.length) % list.length], {focus: true});
    });
  }
  const fromHash = () => visible().find((t) => `#${t.dataset.view}` === location.hash);
  select(fromHash() ?? tabs[0], {updateHash: false});
  window.addEventListener("hashchange", () => { const t = fromHash(); if (t) select(t, {updateHash: false}); });
  return {select, fromHash, tabs};
}

const READY_POLL_MS = 2000;

/** /info (null while the model loads: 503, or on a server without it) and /ready; polls until ready. */
async function loadModelFacts(tabs) {
  const version = document.getElementById("model-version");
  const banner = document.getElementById("banner");
  const aboutTab = document.getElementById("tab-about");
  let ready = null;
  try {
    ready = await fetch("ready").then((r) => r.json());
  } catch {
    ready = null;
  }
  if (ready?.status === "ready" || ready === null) {
    try { info = await getJson("info"); } catch { info = null; }
  }
  if (info) {
    initAbout(info);
    aboutTab.hidden = false;
    if (tabs.fromHash() === aboutTab) tabs.select(aboutTab, {updateHash: false});
  }
  document.body.dataset.info = info ? "yes" : "no";
  version.textContent = info?.model_version ?? ready?.model_version
    ?? (ready?.status === "loading" ? "loading\u2026" : "unknown");
  if (ready && ready.status !== "ready") {
    banner.textContent = ready.status === "loading"
      ? "The model is still loading: predictions start working in a few seconds."
      : `The model is not available (${ready.status}${ready.detail ? `: ${ready.detail}` : ""}).`;
    banner.hidden = false;
    if (ready.status === "loading") {
      setTimeout(() => loadModelFacts(tabs), READY_POLL_MS);
    }
  } else {
    banner.hidden = true;
  }
}

const tabs = initTabs();
initSingle(getInfo);
initBacklog(getInfo);
loadModelFacts(tabs).finally(() => { document.body.dataset.ready = "true"; });
