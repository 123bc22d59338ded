// The dead letter queue panel: counts by status, failed attempts over time by reason, a
// browser of the records with filters (server side) and paging, retry and purge of what the
// filters match. One record's details and actions are in deadletter.js.
import { StackedBars } from "./charts.js";
import { LETTER_STATES, hideLetter, selectedLetter, showLetter, useLetterApi } from "./deadletter.js";
import { age } from "./panels.js";
import { RowSet } from "./rows.js";
import { count, duration, el, mark, serverClock, setData, setText, updateMark } from "./views.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const IDS_PER_REQUEST = 1000; // the most ids one request may name (MAX_IDS in _dlq_params.py)

const REASONS = ["transient", "rate_limited", "timeout", "permanent", "poison"];
const RANGES = { 3600: 300, 21600: 1800, 86400: 3600, 604800: 21600 }; // span -> bucket seconds

let page = null;
let rows = null;
let chart = null;
let pages = 1;
let serial = 0;

const seriesOf = new Map(); // an error type keeps its colour once it has one

function classOf(key) {
  if (REASONS.includes(key)) return `reason-${key}`;
  if (!seriesOf.has(key)) seriesOf.set(key, seriesOf.size % 6);
  return `series-${seriesOf.get(key)}`;
}

/** The filter chosen in the selects, as the API takes it (empty fields left out). */
export function currentFilter() {
  const filter = {};
  for (const [field, id] of [["status", "dlq-status"], ["queue", "dlq-queue"], ["classification", "dlq-class"], ["error_type", "dlq-error-type"]]) {
    if ($(id).value) filter[field] = $(id).value;
  }
  return filter;
}

function describeFilter(filter) {
  const parts = Object.entries(filter).map(([k, v]) => `${k.replace("_", " ")} ${v}`);
  return parts.length ? parts.join(", ") : "every record (no filter)";
}

/** Keep a select's options in step with the values seen (the chosen one stays). */
function fillSelect(select, values, all) {
  const wanted = ["", ...values];
  const current = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === current.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...wanted.map((value) => el("option", { value, text: value || all })));
  select.value = wanted.includes(chosen) ? chosen : "";
}

function renderStats(data) {
  setText($("dlq-name"), data.name);
  const open = (data.by_status.pending ?? 0) + (data.by_status.retrying ?? 0) + (data.by_status.parked ?? 0);
  setText($("dlq-summary"), `${count(open)} open of ${count(data.total)}` +
    (data.oldest_pending_age ? ` · oldest pending ${duration(data.oldest_pending_age)}` : "") +
    ` · ${(data.arrival_rate * 60).toFixed(1)} new a minute`);
  $("dlq-counts").replaceChildren(...Object.entries(LETTER_STATES).map(([status, spec]) =>
    el("li", {}, el("button", { type: "button", class: "count-chip", "data-status": status, "aria-pressed": String($("dlq-status").value === status), title: `Show ${status} records` },
      mark(spec), el("span", { class: "count-value", text: count(data.by_status[status] ?? 0) })))));
  fillSelect($("dlq-queue"), Object.keys(data.by_queue).sort(), "All queues");
  fillSelect($("dlq-error-type"), Object.keys(data.by_error_type).sort(), "All errors");
  loadLetters();
  loadChart();
}

// -- the records ----------------------------------------------------------------------------

function createRow(id) {
  const parts = {
    mark: mark(LETTER_STATES.pending),
    queue: el("td"),
    error: el("td", { class: "dlq-error" }),
    reason: el("td"),
    attempts: el("td", { class: "num" }),
    failed: el("td", { class: "num" }),
    next: el("td", { class: "num" }),
  };
  const open = el("button", { type: "button", class: "link", "data-action": "show", "aria-label": `Show dead letter ${id}`, text: id });
  const row = el("tr", {}, el("td", { class: "state" }, parts.mark), el("th", { scope: "row", class: "name" }, open),
    parts.queue, parts.error, parts.reason, parts.attempts, parts.failed, parts.next);
  return { row, ...parts };
}

function updateRow(entry, letter) {
  updateMark(entry.mark, LETTER_STATES[letter.status] ?? { label: letter.status, tone: "off", shape: "ring" });
  setData(entry.row, "status", letter.status);
  setText(entry.queue, letter.queue);
  const text = `${letter.error.type}: ${letter.error.message}`;
  setText(entry.error, text);
  entry.error.title = text;
  setText(entry.reason, letter.classification);
  setText(entry.attempts, `${letter.attempts} / ${letter.max_attempts}`);
  entry.failed.replaceChildren(age(letter.last_failed_at));
  entry.next.replaceChildren(letter.next_attempt_at ? age(letter.next_attempt_at, "until") : "–");
  setData(entry.row, "selected", String(selectedLetter() === letter.id));
}

/** Read the records the filters match (as many pages as were shown). */
export async function loadLetters() {
  const mine = ++serial;
  const query = new URLSearchParams({ ...currentFilter(), limit: String(Math.min(500, PAGE * pages)) });
  try {
    const data = await page.getJSON(`dlq/messages?${query}`);
    if (mine !== serial) return;
    rows.apply(data.items, (letter) => letter.id);
    $("dlq-more").hidden = !data.cursor || PAGE * pages >= 500;
    setText($("dlq-count"), `${count(data.items.length)}${data.cursor ? "+" : ""} shown`);
    const selected = selectedLetter();
    if (selected) {
      const found = data.items.find((letter) => letter.id === selected);
      if (found) showLetter(found);
    }
  } catch (error) {
    if (mine === serial) setText($("dlq-count"), error.status ? page.explain(error, "read this").text : "The server did not answer.");
  }
}

function filtersChanged() {
  pages = 1;
  hideLetter();
  for (const chip of $("dlq-counts").querySelectorAll("button")) chip.setAttribute("aria-pressed", String(chip.dataset.status === $("dlq-status").value));
  loadLetters();
  loadChart();
}

// -- the chart ------------------------------------------------------------------------------

async function loadChart() {
  const span = Number($("dlq-range").value);
  const bucket = RANGES[span];
  const query = new URLSearchParams({ bucket: String(bucket), since: String(Math.floor(serverClock.now() - span)) });
  if ($("dlq-queue").value) query.set("queue", $("dlq-queue").value);
  try {
    const data = await page.getJSON(`dlq/failures?${query}`);
    const byType = $("dlq-by").value === "error_type";
    const keys = byType ? data.error_types : REASONS.filter((r) => data.classifications.includes(r));
    chart.draw({ buckets: data.buckets, keys, series: byType ? "by_error_type" : "by_classification", bucket, label: "failed attempts" });
    $("dlq-chart-note").hidden = !data.truncated;
  } catch {
    // the stats line already says when the queue cannot be read
  }
}

// -- what the filters match -----------------------------------------------------------------

function retryMatching() {
  const filter = currentFilter();
  page.operate({
    title: "Retry the matching dead letters?",
    text: `Every pending or parked record matching ${describeFilter(filter)} becomes due now.`,
    label: "Retry them",
    what: "retry dead letters",
    run: (bearer, { reason }) => page.send("POST", "dlq/retry-many", { body: reason ? { ...filter, reason } : filter, bearer }),
    done: (result) => {
      page.toast(`${count(result.count)} dead letters due now.`, "pass");
      page.reload();
    },
  });
}

function purgeMatching() {
  const filter = currentFilter();
  page.operate({
    title: "Purge the matching dead letters?",
    text: `Purging deletes for good every record matching ${describeFilter(filter)}. The next step shows how many.`,
    label: "Count them",
    reason: false,
    what: "purge dead letters",
    run: async (bearer) => {
      try {
        await page.send("POST", "dlq/purge", { body: filter, bearer }); // without confirm: a count
        return { matched: 0 };
      } catch (error) {
        if (error.status === 400 && error.body?.error === "confirmation_required") return error.body;
        throw error;
      }
    },
    done: (preview) => setTimeout(() => confirmPurge(filter, preview), 50), // after this dialog closes
  });
}

function confirmPurge(filter, preview) {
  if (!preview.matched) {
    page.toast(`No dead letter matches ${describeFilter(filter)}.`);
    return;
  }
  const matched = `${count(preview.matched)}${preview.more ? "+" : ""}`;
  const noun = preview.matched === 1 && !preview.more ? "dead letter" : "dead letters";
  // A complete count is confirmed by its ids: a record that arrives meanwhile was not counted,
  // and stays. Past the server's scan there are no ids to send, so the filter decides.
  const ids = preview.more ? null : preview.ids;
  const text = ids
    ? `They match ${describeFilter(filter)}; only these are deleted. This cannot be undone.`
    : `At least ${count(preview.matched)} match ${describeFilter(filter)} (counting stopped there). ` +
      "Every record that matches when you confirm is deleted, however many. This cannot be undone.";
  const parts = ids ? chunks(ids, IDS_PER_REQUEST) : [null];
  let next = 0; // a second try after an error goes on from the part that failed
  let purged = 0;
  page.operate({
    title: `Purge ${matched} ${noun} for good?`,
    text,
    label: `Purge ${matched}`,
    danger: true,
    what: "purge dead letters",
    run: async (bearer, { reason }) => {
      for (; next < parts.length; next += 1) {
        const body = { ...filter, confirm: true, ...(parts[next] ? { ids: parts[next] } : {}), ...(reason ? { reason } : {}) };
        purged += (await page.send("POST", "dlq/purge", { body, bearer })).count;
      }
      return { count: purged };
    },
    done: (result) => {
      page.toast(`${count(result.count)} dead letters purged.`, "pass");
      hideLetter();
      page.reload();
    },
  });
}

function chunks(list, size) {
  const out = [];
  for (let start = 0; start < list.length; start += size) out.push(list.slice(start, start + size));
  return out;
}

export const dlqPanel = {
  id: "dlq-panel",
  path: "dlq/stats",
  every: 10,
  kinds: ["dlq."],
  init(ctx) {
    page = ctx;
    useLetterApi(ctx);
    chart = new StackedBars(classOf);
    $("dlq-chart").replaceChildren(chart.node);
    rows = new RowSet({ body: $("dlq-rows"), count: null, empty: $("dlq-empty"), create: createRow, update: updateRow, match: () => true });
    for (const id of ["dlq-status", "dlq-queue", "dlq-class", "dlq-error-type"]) $(id).addEventListener("change", filtersChanged);
    $("dlq-range").addEventListener("change", loadChart);
    $("dlq-by").addEventListener("change", loadChart);
    $("dlq-more").addEventListener("click", () => {
      pages += 1;
      loadLetters();
    });
    $("dlq-counts").addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-status]");
      if (!chip) return;
      $("dlq-status").value = $("dlq-status").value === chip.dataset.status ? "" : chip.dataset.status;
      filtersChanged();
    });
    $("dlq-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action='show']");
      const entry = button && rows.rows.get(button.closest("tr").dataset.name);
      if (!entry) return;
      showLetter(entry.item);
      for (const other of rows.rows.values()) setData(other.row, "selected", String(other === entry));
    });
    $("dlq-retry-many").addEventListener("click", retryMatching);
    $("dlq-purge").addEventListener("click", purgeMatching);
  },
  render: renderStats,
};
