// The breaker table: one row per breaker, updated in place, with filters and a chart each.
import { updatePipelineMarks } from "./panels.js";
import {
  BREAKER_STATES, Sparkline, count, duration, el, mark, percent, serverClock, setData, setText,
  updateMark,
} from "./views.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 60; // chart samples, one a second
const serverNow = () => serverClock.now();

/** name -> {data, row, parts, spark, samples, seen, probeAt} */
export const breakers = new Map();

function breakerRow(name) {
  const parts = {
    mark: mark(BREAKER_STATES.closed),
    rate: el("span", { class: "rate" }),
    fill: el("span", { class: "fill" }),
    tick: el("span", { class: "tick" }),
    threshold: el("span", { class: "muted small threshold" }),
    calls: el("td", { class: "num" }),
    failed: el("td", { class: "num" }),
    rejected: el("td", { class: "num" }),
    openings: el("td", { class: "num" }),
    since: el("td", { class: "num since" }),
  };
  const spark = new Sparkline(HISTORY, 100, 24);
  const button = (action, label, cls) =>
    el("button", { type: "button", class: `small ${cls}`, "data-action": action, "aria-label": `${label} ${name}`, text: label });
  const row = el(
    "tr",
    { "data-name": name },
    el("td", { class: "state" }, parts.mark),
    el("th", { scope: "row", class: "name", title: name }, name),
    el("td", { class: "num" }, el("span", { class: "rate-cell" },
      el("span", { class: "meter", "aria-hidden": "true" }, parts.fill, parts.tick), parts.rate, parts.threshold)),
    el("td", { class: "chart" }, spark.svg),
    parts.calls,
    parts.failed,
    parts.rejected,
    parts.openings,
    parts.since,
    el("td", { class: "actions" }, button("reset", "Reset", "reset"), button("open", "Open", "trip")),
  );
  return { row, parts, spark, samples: [], seen: null, data: null };
}

export function applyBreaker(data) {
  let entry = breakers.get(data.name);
  let added = false;
  if (!entry) {
    entry = breakerRow(data.name);
    breakers.set(data.name, entry);
    added = true;
  }
  entry.data = data;
  if (data.state !== "closed") entry.seen = data.state; // a short opening still shows in the chart
  const { parts } = entry;
  const spec = BREAKER_STATES[data.state] ?? { label: data.state, tone: "off", shape: "ring" };
  updateMark(parts.mark, spec);
  setData(entry.row, "state", data.state);
  setText(parts.rate, percent(data.failure_rate));
  setText(parts.threshold, `/ ${percent(data.threshold)}`);
  parts.fill.style.width = `${Math.min(100, data.failure_rate * 100)}%`;
  parts.tick.style.left = `${Math.min(100, data.threshold * 100)}%`;
  setData(parts.fill, "over", String(data.failure_rate >= data.threshold && data.window_calls > 0));
  setText(parts.calls, count(data.calls));
  setText(parts.failed, count(data.failures));
  setText(parts.rejected, count(data.rejected));
  setText(parts.openings, count(data.openings));
  entry.probeAt = data.state === "open" && typeof data.retry_after === "number" ? serverNow() + data.retry_after : null;
  updateSince(entry);
  if (added) {
    sample(entry);
    placeRow(entry);
  }
}

function updateSince(entry) {
  const { data } = entry;
  const text = entry.probeAt ? `probe in ${duration(Math.max(0, entry.probeAt - serverNow()))}` : duration(Math.max(0, serverNow() - data.since));
  setText(entry.parts.since, text);
}

function placeRow(entry) {
  const body = $("breaker-rows");
  const name = entry.row.dataset.name;
  const after = [...body.children].find((row) => row.dataset.name.localeCompare(name, undefined, { numeric: true }) > 0);
  body.insertBefore(entry.row, after ?? null);
  filterRows();
}

export function applyBreakers(list) {
  const names = new Set();
  for (const data of list) {
    names.add(data.name);
    applyBreaker(data);
  }
  for (const [name, entry] of breakers) {
    if (!names.has(name)) {
      entry.row.remove();
      breakers.delete(name);
    }
  }
  const tally = {};
  let calls = 0, failed = 0, rejected = 0;
  for (const { data } of breakers.values()) {
    tally[data.state] = (tally[data.state] ?? 0) + 1;
    calls += data.calls;
    failed += data.failures;
    rejected += data.rejected;
  }
  const problems = list.length - (tally.closed ?? 0) - (tally.disabled ?? 0);
  setText($("tile-breakers"), problems ? `${problems} not closed` : `${list.length} closed`);
  setData($("tile-breakers"), "tone", problems ? "fail" : "pass");
  setText($("tile-breakers-sub"), Object.entries(tally).map(([s, n]) => `${n} ${BREAKER_STATES[s]?.label ?? s}`).join(" · ") || "none");
  setText($("tile-calls"), count(calls));
  setText($("tile-calls-sub"), `${count(failed)} failed · ${count(rejected)} rejected`);
  $("breaker-empty").hidden = list.length > 0;
  filterRows();
  updatePipelineMarks(breakers);
}

function filterRows() {
  const text = $("breaker-filter").value.trim().toLowerCase();
  const wanted = $("breaker-state").value;
  let shown = 0;
  for (const [name, entry] of breakers) {
    const s = entry.data?.state;
    const stateOk = wanted === "all" || (wanted === "problem" ? s !== "closed" && s !== "disabled" : s === wanted);
    const visible = stateOk && name.toLowerCase().includes(text);
    if (visible && entry.row.hidden) entry.spark.draw(entry.samples, entry.data?.threshold);
    entry.row.hidden = !visible;
    if (visible) shown += 1;
  }
  const total = breakers.size;
  setText($("breaker-count"), shown === total ? `${total}` : `${shown} of ${total}`);
}

$("breaker-filter").addEventListener("input", filterRows);
$("breaker-state").addEventListener("change", filterRows);
/** Call `handler(name, action)` when a row's Reset or Open button is clicked. */
export function onBreakerAction(handler) {
  $("breaker-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) handler(button.closest("tr").dataset.name, button.dataset.action);
  });
}

/** A sample for the chart: the rate now, and the worst state seen since the last sample. */
function sample(entry) {
  entry.samples.push({ rate: entry.data.failure_rate, state: entry.seen ?? entry.data.state });
  entry.seen = null;
  if (entry.samples.length > HISTORY) entry.samples.shift();
  if (!entry.row.hidden) entry.spark.draw(entry.samples, entry.data.threshold);
}

/** Once a second: a chart sample per breaker, and its time in state. */
export function tickBreakers() {
  for (const entry of breakers.values()) {
    if (!entry.data) continue;
    sample(entry);
    if (!entry.row.hidden) updateSince(entry);
  }
}
