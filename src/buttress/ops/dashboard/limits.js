// The rate limits and queues panel (read-only): rate limiters with their algorithm, decisions
// and what is left; concurrency limiters with what is in flight; adaptive throttles with their
// rejection probability; work queues with their depth by priority, oldest item and workers.
// Four tables in one scroll box, each hidden while it has no row to show.
import { RowSet } from "./rows.js";
import { count, duration, el, mark, percent, serverClock, setData, setText, updateMark } from "./views.js";

const $ = (id) => document.getElementById(id);

export const LIMIT_STATES = {
  ok: { label: "ok", tone: "pass", shape: "circle" },
  idle: { label: "idle", tone: "off", shape: "ring" },
  refusing: { label: "refusing", tone: "warn", shape: "triangle" },
  exhausted: { label: "exhausted", tone: "warn", shape: "triangle" },
  throttling: { label: "throttling", tone: "warn", shape: "triangle" },
  full: { label: "full", tone: "warn", shape: "square" },
  shedding: { label: "shedding", tone: "fail", shape: "square" },
  degraded: { label: "degraded", tone: "fail", shape: "hatched" },
  closed: { label: "closed", tone: "off", shape: "ring" },
};
const QUIET = ["ok", "idle"];

const ALGORITHMS = {
  token_bucket: "token bucket",
  leaky_bucket: "leaky bucket",
  gcra: "GCRA",
  fixed_window: "fixed window",
  sliding_window_log: "sliding log",
  sliding_window_counter: "sliding window",
};

const sections = {}; // kind -> {box, rows}

/** "2/s", "30/min", "4/h": a rate per second in the largest unit that keeps it >= 1. */
function rate(perSecond) {
  for (const [factor, unit] of [[1, "s"], [60, "min"], [3600, "h"]]) {
    const value = perSecond * factor;
    if (value >= 1 || unit === "h") return `${Number(value.toPrecision(3))}/${unit}`;
  }
  return "";
}

/** "per minute", "per 10 s", "per 2 h". */
function per(seconds) {
  for (const [size, unit] of [[86400, "day"], [3600, "hour"], [60, "minute"]]) {
    if (seconds >= size && seconds % size === 0) return seconds === size ? `per ${unit}` : `per ${seconds / size} ${unit}s`;
  }
  return `per ${duration(seconds)}`;
}

function parameters(p) {
  if (typeof p.rate === "number") {
    const room = p.burst ?? p.capacity;
    return `${rate(p.rate)}${room === undefined ? "" : `, ${p.burst !== undefined ? "burst" : "capacity"} ${count(room)}`}`;
  }
  if (typeof p.limit === "number") return `${count(p.limit)} ${per(p.window)}`;
  return Object.entries(p).map(([k, v]) => `${k} ${v}`).join(", ");
}

/** A small bar with its words: {cell, fill, text}. */
function meter() {
  const fill = el("span", { class: "fill" });
  const text = el("span", { class: "rate" });
  const cell = el("td", { class: "num" }, el("span", { class: "rate-cell" }, el("span", { class: "meter", "aria-hidden": "true" }, fill), text));
  return { cell, fill, text };
}

function setMeter(parts, share, text, over) {
  parts.fill.style.width = `${Math.max(0, Math.min(1, share || 0)) * 100}%`;
  setData(parts.fill, "over", String(over));
  setText(parts.text, text);
}

function nameCell(name, ...more) {
  return el("th", { scope: "row", class: "name", title: name }, el("span", { class: "cap-name", text: name }), ...more);
}

function setStatus(entry, status, why = "") {
  entry.status = status;
  updateMark(entry.mark, LIMIT_STATES[status]);
  entry.mark.title = why;
  setData(entry.row, "status", status);
}

// -- rate limiters ----------------------------------------------------------------------------

function createLimiter(name) {
  const parts = {
    mark: mark(LIMIT_STATES.idle),
    algorithm: el("td"),
    allowed: el("td", { class: "num" }),
    refused: meter(),
    now: el("td", { class: "num" }),
    keys: el("td", { class: "num" }),
    waiting: el("td", { class: "num" }),
    store: el("span"),
    degraded: el("span", { class: "tag warn-tag", text: "degraded" }),
  };
  const row = el("tr", {},
    el("td", { class: "state" }, parts.mark), nameCell(name), parts.algorithm, parts.allowed, parts.refused.cell,
    parts.now, parts.keys, parts.waiting, el("td", { class: "store" }, parts.store, parts.degraded));
  return { row, ...parts };
}

function updateLimiter(entry, item) {
  const now = serverClock.now();
  const recent = entry.seen ? item.refused - entry.seen.refused : 0;
  const since = entry.seen ? now - entry.seen.time : 0;
  entry.seen = { refused: item.refused, time: now };
  const decided = item.allowed + item.refused;
  const share = decided ? item.refused / decided : 0;
  entry.text = `${item.algorithm} ${item.store}`;
  setText(entry.algorithm, `${ALGORITHMS[item.algorithm] ?? item.algorithm} · ${parameters(item.parameters)}`);
  entry.algorithm.title = (item.max_wait ? `waits up to ${duration(item.max_wait)} for room` : "never waits") +
    (item.keyed ? "; one quota per key" : "; one quota");
  setText(entry.allowed, count(item.allowed));
  setMeter(entry.refused, share, item.refused ? `${count(item.refused)} · ${percent(share)}` : "0", share >= 0.5);
  entry.refused.cell.title = recent > 0 ? `${count(recent)} refused in the last ${duration(since)}` : "none refused since the last read";
  if (item.keyed) {
    setText(entry.now, "per key");
    entry.now.title = "one quota per key: see the keys tracked";
  } else if (typeof item.remaining === "number") {
    const wait = item.remaining > 0 ? "" : item.retry_after === null ? " · never (too large)" : ` · room in ${duration(item.retry_after)}`;
    setText(entry.now, `${count(item.remaining)} of ${count(item.limit)} left${wait}`);
    entry.now.title = typeof item.reset_after === "number" ? `full again in ${duration(item.reset_after)}` : "";
  } else {
    setText(entry.now, "–");
    entry.now.title = item.error ?? "";
  }
  setText(entry.keys, count(item.keys));
  setText(entry.waiting, count(item.waiting));
  setText(entry.store, item.store);
  entry.store.title = item.lease ? `fleet lease: blocks of up to ${percent(item.lease)} of the limit` : "";
  entry.degraded.hidden = !item.degraded && !item.error;
  entry.degraded.title = item.error ?? "";
  if (item.degraded || item.error) setStatus(entry, "degraded", item.error ?? "the fleet store is unreachable: deciding locally");
  else if (recent > 0) setStatus(entry, "refusing", entry.refused.cell.title);
  else if (!item.keyed && item.remaining === 0) setStatus(entry, "exhausted", "no room left now");
  else setStatus(entry, decided || item.waiting ? "ok" : "idle");
}

// -- concurrency limiters ---------------------------------------------------------------------

function createConcurrency(name) {
  const parts = { mark: mark(LIMIT_STATES.idle), algorithm: el("td"), inFlight: meter(), rejected: el("td", { class: "num" }), rtt: el("td", { class: "num" }) };
  const row = el("tr", {}, el("td", { class: "state" }, parts.mark), nameCell(name), parts.algorithm, parts.inFlight.cell, parts.rejected, parts.rtt);
  return { row, ...parts };
}

function updateConcurrency(entry, item) {
  const adaptive = typeof item.max_limit === "number";
  entry.text = `${item.algorithm} ${item.policy}`;
  setText(entry.algorithm, adaptive ? `${item.algorithm} · limit ${count(item.min_limit)}–${count(item.max_limit)}` : `${item.algorithm} · limit ${count(item.limit)}`);
  entry.algorithm.title = item.policy;
  const full = item.in_flight >= item.limit;
  setMeter(entry.inFlight, item.limit ? item.in_flight / item.limit : 1, `${count(item.in_flight)} / ${count(item.limit)}`, full);
  entry.inFlight.cell.title = `${count(item.in_flight)} calls in flight, limit ${count(item.limit)} now`;
  setText(entry.rejected, count(item.rejected));
  setText(entry.rtt, adaptive && typeof item.last_rtt === "number" ? duration(item.last_rtt) : "–");
  entry.rtt.title = typeof item.long_rtt === "number" ? `long-term ${duration(item.long_rtt)}` : "";
  if (item.shedding) setStatus(entry, "shedding", "refused a call in the last moment");
  else if (full) setStatus(entry, "full", "every slot is taken");
  else setStatus(entry, item.in_flight || item.rejected ? "ok" : "idle");
}

// -- adaptive throttles -----------------------------------------------------------------------

function createThrottle(name) {
  const parts = { mark: mark(LIMIT_STATES.idle), options: el("td"), probability: meter(), requests: el("td", { class: "num" }), accepts: el("td", { class: "num" }), rejected: el("td", { class: "num" }) };
  const row = el("tr", {}, el("td", { class: "state" }, parts.mark), nameCell(name), parts.options, parts.probability.cell, parts.requests, parts.accepts, parts.rejected);
  return { row, ...parts };
}

function updateThrottle(entry, item) {
  const o = item.options ?? {};
  entry.text = item.policy;
  setText(entry.options, [o.k === undefined ? null : `k ${o.k}`, typeof o.window === "number" ? `window ${duration(o.window)}` : null].filter(Boolean).join(" · ") || "–");
  setMeter(entry.probability, item.probability, percent(item.probability), item.probability >= 0.5);
  entry.probability.cell.title = "the share of new requests it rejects now (client-side throttling)";
  setText(entry.requests, count(item.requests));
  setText(entry.accepts, count(item.accepts));
  setText(entry.rejected, count(item.rejected));
  if (item.shedding) setStatus(entry, "shedding", "rejected a request in the last moment");
  else if (item.probability > 0) setStatus(entry, "throttling", `rejects ${percent(item.probability)} of requests`);
  else setStatus(entry, item.requests ? "ok" : "idle");
}

// -- work queues ------------------------------------------------------------------------------

function createQueue(name) {
  const parts = {
    mark: mark(LIMIT_STATES.idle), depth: meter(), priorities: el("td", { class: "priorities" }), oldest: el("td", { class: "num" }),
    workers: meter(), processed: el("td", { class: "num" }), failed: el("td", { class: "num" }), dropped: el("td", { class: "num" }),
  };
  const row = el("tr", {}, el("td", { class: "state" }, parts.mark), nameCell(name), parts.depth.cell, parts.priorities, parts.oldest,
    parts.workers.cell, parts.processed, parts.failed, parts.dropped);
  return { row, ...parts };
}

function updateQueue(entry, item) {
  const full = item.depth >= item.max_size;
  entry.text = item.policy ?? "";
  setMeter(entry.depth, item.max_size ? item.depth / item.max_size : 0, `${count(item.depth)} / ${count(item.max_size)}`, full);
  entry.depth.cell.title = `${count(item.depth)} waiting of at most ${count(item.max_size)}`;
  const byPriority = item.depth_by_priority ?? [];
  setText(entry.priorities, byPriority.length > 1 ? byPriority.map((n, p) => `p${p} ${count(n)}`).join(" · ") : "–");
  entry.priorities.title = byPriority.length > 1 ? "waiting per priority; p0 is served first" : "one priority";
  setText(entry.oldest, item.depth && typeof item.oldest_age === "number" ? duration(item.oldest_age) : "–");
  setMeter(entry.workers, item.workers ? item.busy / item.workers : 0, `${count(item.busy)} / ${count(item.workers)}`, false);
  entry.workers.cell.title = `${count(item.busy)} of ${count(item.workers)} workers busy` +
    (typeof item.min_workers === "number" && item.min_workers !== item.max_workers ? ` (scales ${item.min_workers}–${item.max_workers})` : "");
  setText(entry.processed, count(item.processed));
  setText(entry.failed, count(item.failed));
  const dropped = (item.refused ?? 0) + (item.evicted ?? 0) + (item.expired ?? 0);
  setText(entry.dropped, count(dropped));
  entry.dropped.title = `refused ${count(item.refused)} · pushed out ${count(item.evicted)} · expired ${count(item.expired)}`;
  if (item.closed) setStatus(entry, "closed", "takes no new item");
  else if (item.shedding) setStatus(entry, "shedding", "refused or pushed out an item in the last moment");
  else if (full) setStatus(entry, "full", "the next item is refused or pushes out a lower priority");
  else setStatus(entry, item.submitted || item.depth ? "ok" : "idle");
}

// -- the panel --------------------------------------------------------------------------------

function summarise() {
  let shown = 0;
  let total = 0;
  const tally = {};
  for (const { box, rows } of Object.values(sections)) {
    let visible = 0;
    for (const entry of rows.rows.values()) {
      if (!entry.row.hidden) visible += 1;
      if (!QUIET.includes(entry.status)) tally[entry.status] = (tally[entry.status] ?? 0) + 1;
    }
    box.hidden = visible === 0;
    shown += visible;
    total += rows.rows.size;
  }
  setText($("limits-count"), shown === total ? `${total}` : `${shown} of ${total}`);
  $("limits-empty").hidden = shown > 0;
  setText($("limits-summary"), Object.entries(tally).map(([status, n]) => `${n} ${status}`).join(" · "));
}

function render(data) {
  const lists = { limiters: data.limiters, concurrency: data.concurrency, throttles: data.throttles, queues: data.queues };
  if (!Object.values(lists).some((list) => list.length)) return false; // nothing registered (yet)
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
  for (const [kind, list] of Object.entries(lists)) sections[kind].rows.apply([...list].sort(byName), (item) => item.name);
  summarise();
  return true;
}

function section(kind, box, body, create, update) {
  const rows = new RowSet({
    body,
    count: null,
    filter: $("limits-filter"),
    select: $("limits-status"),
    create,
    update,
    match: (entry, choice) => (choice === "problem" ? !QUIET.includes(entry.status) : choice === kind),
  });
  sections[kind] = { box, rows };
}

export const limitsPanel = {
  id: "limits-panel",
  path: "limits",
  every: 3,
  recheck: 30, // limiters are often registered after the app: look again now and then
  kinds: ["loadshed."],
  init() {
    section("limiters", $("limits-limiters"), $("limiter-rows"), createLimiter, updateLimiter);
    section("concurrency", $("limits-concurrency"), $("concurrency-rows"), createConcurrency, updateConcurrency);
    section("throttles", $("limits-throttles"), $("throttle-rows"), createThrottle, updateThrottle);
    section("queues", $("limits-queues"), $("queue-rows"), createQueue, updateQueue);
    // after the tables' own listeners: count what they show
    $("limits-filter").addEventListener("input", summarise);
    $("limits-status").addEventListener("change", summarise);
  },
  render,
};
