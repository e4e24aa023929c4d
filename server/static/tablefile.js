// Reading ticket files (CSV, JSONL) into rows, and writing the results back as CSV. No DOM here.
"use strict";

export const MAX_FILE_BYTES = 10 * 1024 * 1024;
export const MAX_TICKETS = 10_000;

const BODY_COLUMNS = ["body", "text"];
const SUBJECT_COLUMNS = ["subject", "title"];
const GIVEN_COLUMNS = ["priority", "label"];
const ESCAPES = {"\\r\\n": "\n", "\\n": "\n", "\\r": "\n", "\\t": "\t", '\\"': '"'};
const ESCAPE_RE = /\\r\\n|\\n|\\r|\\t|\\"/g;

/** A file the page cannot use; `message` says what is wrong and how to fix it. */
export class FileProblem extends Error {}

export function formatBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Literal \n (and \r\n, \r, \t, \") escapes become characters, as the training data loader does. */
export function unescapeText(text) {
  const out = text.includes("\\") ? text.replace(ESCAPE_RE, (m) => ESCAPES[m]) : text;
  return out.replace(/\r\n?/g, "\n");
}

/** Bytes -> string; a FileProblem naming the line when the bytes are not UTF-8. */
export function decodeUtf8(bytes) {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new FileProblem(
      "The file is UTF-16 text, not UTF-8. Save it again as \u201cCSV UTF-8\u201d (or UTF-8 text) and retry.");
  }
  try {
    return new TextDecoder("utf-8", {fatal: true}).decode(bytes);
  } catch {
    const lossy = new TextDecoder("utf-8").decode(bytes);
    const at = lossy.indexOf("\ufffd");
    const line = at < 0 ? 1 : lossy.slice(0, at).split("\n").length;
    throw new FileProblem(
      `The file is not UTF-8 text (the first invalid byte is on line ${line}; it was probably saved as ` +
      "Windows-1252 or Latin-1). Save it again as \u201cCSV UTF-8\u201d and retry.");
  }
}

/** The delimiter of a CSV header line: the most frequent of , ; and tab outside quotes (default ,). */
function sniffDelimiter(text) {
  const counts = {",": 0, ";": 0, "\t": 0};
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === "\n" || ch === "\r")) break;
    else if (!quoted && ch in counts) counts[ch] += 1;
  }
  return Object.keys(counts).reduce((best, d) => (counts[d] > counts[best] ? d : best), ",");
}

/** RFC 4180 CSV -> array of rows (arrays of strings): quoted fields, "" escapes, newlines in quotes, CRLF. */
export function parseCsv(text, delimiter = sniffDelimiter(text)) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i += 1; continue;
      }
      field += ch; i += 1; continue;
    }
    if (ch === '"' && field === "") { quoted = true; i += 1; continue; }
    if (ch === delimiter) { row.push(field); field = ""; i += 1; continue; }
    if (ch === "\n" || ch === "\r") {
      row.push(field); rows.push(row); row = []; field = "";
      i += ch === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    field += ch; i += 1;
  }
  if (quoted) {
    throw new FileProblem(
      `The CSV has a quoted field that never ends (row ${rows.length + 1}): a " is missing. ` +
      "Check the file in a spreadsheet and save it again.");
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.length > 1 || r[0].trim() !== "");
}

function findColumn(columns, names) {
  for (const name of names) {
    const at = columns.indexOf(name);
    if (at >= 0) return at;
  }
  return -1;
}

function missingColumn(columns) {
  const found = columns.length ? columns.map((c) => `\u201c${c}\u201d`).join(", ") : "none";
  return new FileProblem(
    `The file has no \u201cbody\u201d column (columns found: ${found}). The page needs the ticket text in a ` +
    "column named \u201cbody\u201d (or \u201ctext\u201d) and reads \u201csubject\u201d when there is one, " +
    "as in the dataset's own files (subject, body, \u2026).");
}

function tooMany(n) {
  return new FileProblem(
    `The file is too large: ${n.toLocaleString("en")} tickets, the page takes up to ` +
    `${MAX_TICKETS.toLocaleString("en")} at once. Split the file and upload the parts one by one.`);
}

function tickets(columns, rows) {
  const lower = columns.map((c) => c.trim().toLowerCase());
  const body = findColumn(lower, BODY_COLUMNS);
  if (body < 0) throw missingColumn(columns.map((c) => c.trim()));
  const subject = findColumn(lower, SUBJECT_COLUMNS);
  const given = findColumn(lower, GIVEN_COLUMNS);
  if (rows.length === 0) throw new FileProblem("The file has a header but no tickets.");
  if (rows.length > MAX_TICKETS) throw tooMany(rows.length);
  return {
    columns,
    hasGiven: given >= 0,
    rows: rows.map((cells, i) => ({
      row: i + 1,
      cells,
      subject: subject >= 0 ? unescapeText(cells[subject] ?? "") : "",
      body: unescapeText(cells[body] ?? ""),
      given: given >= 0 ? (cells[given] ?? "").trim().toLowerCase() : "",
    })),
  };
}

function readCsv(text) {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new FileProblem("The file is empty.");
  const [header, ...data] = rows;
  return tickets(header, data.map((cells) => header.map((_, j) => cells[j] ?? "")));
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function readJsonLines(text) {
  const trimmed = text.trim();
  let objects;
  if (trimmed.startsWith("[")) {
    try { objects = JSON.parse(trimmed); } catch (err) {
      throw new FileProblem(`The file starts like a JSON array but is not valid JSON: ${err.message}`);
    }
  } else {
    objects = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i += 1) {
      if (!lines[i].trim()) continue;
      try { objects.push(JSON.parse(lines[i])); } catch {
        throw new FileProblem(
          `Line ${i + 1} is not valid JSON. A JSONL file has one JSON object per line, e.g. ` +
          '{"subject": "Login fails", "body": "Since this morning\u2026"}');
      }
      if (objects.length > MAX_TICKETS) throw tooMany(`more than ${MAX_TICKETS}`);
    }
  }
  if (objects.length === 0) throw new FileProblem("The file is empty.");
  const bad = objects.findIndex((o) => o === null || typeof o !== "object" || Array.isArray(o));
  if (bad >= 0) throw new FileProblem(`Ticket ${bad + 1} is not a JSON object with a \u201cbody\u201d field.`);
  const columns = [...new Set(objects.flatMap((o) => Object.keys(o)))];
  return tickets(columns, objects.map((o) => columns.map((c) => cellText(o[c]))));
}

/** Parse a ticket file's text; `name` picks the format (.jsonl/.ndjson/.json, else CSV; sniffed if unsure). */
export function readTickets(name, text) {
  const lower = name.toLowerCase();
  const json = /\.(jsonl|ndjson|json)$/.test(lower) ||
    (!/\.(csv|tsv|txt)$/.test(lower) && /^\s*[[{]/.test(text));
  return json ? readJsonLines(text) : readCsv(text);
}

/** A File (or Blob with a name) -> {columns, rows, hasGiven}; throws FileProblem for files it cannot use. */
export async function readTicketFile(file) {
  if (file.size > MAX_FILE_BYTES) {
    throw new FileProblem(
      `The file is too large: ${formatBytes(file.size)}, the page takes files up to ` +
      `${formatBytes(MAX_FILE_BYTES)}. Split it and upload the parts one by one.`);
  }
  if (file.size === 0) throw new FileProblem("The file is empty.");
  const text = decodeUtf8(new Uint8Array(await file.arrayBuffer()));
  return readTickets(file.name || "", text);
}

// Cells a spreadsheet would run as a formula are prefixed with ' (OWASP "CSV injection").
const FORMULA_START = /^[=+\-@\t\r]/;

function csvCell(value) {
  let s = String(value ?? "");
  if (FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n;]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Rows of cells -> CSV text (CRLF line ends, as RFC 4180 and spreadsheets expect). */
export function writeCsv(rows) {
  return rows.map((cells) => cells.map(csvCell).join(",")).join("\r\n") + "\r\n";
}
