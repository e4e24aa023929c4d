// Talking to the server: JSON POSTs, error messages from any error body, 429/503 retried after Retry-After.
"use strict";

export const MAX_RETRIES = 20;
const MAX_WAIT_S = 60;

/** An answer that is not 2xx: `status`, `message` (from the error body), `retryAfterS` when the server said. */
export class ApiError extends Error {
  constructor(status, message, body, retryAfterS) {
    super(message);
    this.status = status;
    this.body = body;
    this.retryAfterS = retryAfterS;
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(value) {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  if (Number.isFinite(n)) return Math.max(0, n);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** The human message of an error body, whatever its shape ({detail}, {message}, {error_type, ...}). */
export function errorMessage(status, body) {
  let text = "";
  if (body && typeof body === "object") {
    const value = body.message ?? body.detail ?? body.error;
    text = typeof value === "string" ? value : value === undefined ? "" : JSON.stringify(value);
  } else if (typeof body === "string") {
    text = body.trim().slice(0, 300);
  }
  return `Error ${status}: ${text || "the request failed"}`;
}

async function readBody(response) {
  const raw = await response.text();
  try { return JSON.parse(raw); } catch { return raw; }
}

/** GET a JSON document; null on 404 (an endpoint this server does not have). */
export async function getJson(path) {
  const response = await fetch(path, {headers: {Accept: "application/json"}});
  if (response.status === 404) return null;
  const body = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, body), body, null);
  return body;
}

/** POST JSON once; resolves to {body, response}, or throws ApiError (status >= 400) / TypeError (network). */
export async function postJson(path, payload, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: {"Content-Type": "application/json", Accept: "application/json"},
    body: JSON.stringify(payload),
    signal,
  });
  const body = await readBody(response);
  if (!response.ok) {
    const wait = retryAfterSeconds(response.headers.get("Retry-After"));
    throw new ApiError(response.status, errorMessage(response.status, body), body, wait);
  }
  return {body, response};
}

function sleep(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, {once: true});
  });
}

/**
 * POST JSON; on 429 (busy) or 503 (loading, draining) wait Retry-After seconds (1 s if absent, at most 60)
 * and try again, up to MAX_RETRIES times. `onWait(seconds, attempt, error)` is told about every wait.
 */
export async function postJsonRetrying(path, payload, {signal, onWait} = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await postJson(path, payload, signal);
    } catch (err) {
      const retryable = err instanceof ApiError && (err.status === 429 || err.status === 503);
      if (!retryable || attempt > MAX_RETRIES) throw err;
      const wait = Math.min(err.retryAfterS ?? 1, MAX_WAIT_S);
      onWait?.(wait, attempt, err);
      await sleep(wait, signal);
    }
  }
}
