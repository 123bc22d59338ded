// The panels around the breaker table: health checks, recent events, pipelines, jobs.
import {
  BREAKER_STATES, CHECK_STATES, JOB_OUTCOMES, clock, count, duration, el, epoch, mark, observed,
  percent, serverClock, setData, setText, updateMark,
} from "./views.js";

const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 100;
const OVERALL = {
  pass: { label: "Healthy", tone: "pass", shape: "circle" },
  warn: { label: "Degraded", tone: "warn", shape: "triangle" },
  fail: { label: "Unhealthy", tone: "fail", shape: "square" },
};

/** A time that `tick()` keeps current: "5 s ago" (data-age) or "in 12 s" (data-until). */
export function age(seconds, kind = "age") {
  const node = el("span", { class: "age", [`data-${kind}`]: String(seconds) });
  refreshTimes(node);
  return node;
}

export function refreshTimes(root = document) {
  const now = serverClock.now();
  const nodes = root.matches?.("[data-age],[data-until]") ? [root] : root.querySelectorAll("[data-age],[data-until]");
  for (const node of nodes) {
    if (node.dataset.age) setText(node, `${duration(Math.max(0, now - Number(node.dataset.age)))} ago`);
    else setText(node, Number(node.dataset.until) > now ? `in ${duration(Number(node.dataset.until) - now)}` : "due");
  }
}

// -- health ---------------------------------------------------------------------------------

export function renderHealth(health) {
  const overall = OVERALL[health.status] ?? OVERALL.warn;
  const badge = $("overall");
  badge.replaceChildren(mark(overall));
  setData(badge, "tone", overall.tone);
  const { pass, warn, fail } = health.counts;
  const total = pass + warn + fail;
  setText($("tile-health"), total ? `${pass} of ${total} passing` : "no checks");
  setData($("tile-health"), "tone", overall.tone);
  setText($("tile-health-sub"), `${overall.label.toLowerCase()} · ${warn} warn · ${fail} fail`);
  setText($("health-count"), String(total));
  $("checks-empty").hidden = total > 0;
  const order = { fail: 0, warn: 1, unknown: 2, pass: 3 };
  const checks = [...health.checks].sort((a, b) => order[a.status] - order[b.status] || a.name.localeCompare(b.name));
  $("checks").replaceChildren(...checks.map(checkItem));
}

function checkItem(check) {
  const spec = CHECK_STATES[check.status] ?? CHECK_STATES.unknown;
  const value = observed(check.value, check.unit);
  const meta = el("div", { class: "check-meta" });
  if (value) meta.append(el("span", { class: "value", text: value }));
  if (check.time) {
    meta.append(el("span", { text: `took ${duration(check.duration)}` }));
    meta.append(age(check.time));
  }
  if (check.stale) meta.append(el("span", { class: "tag", text: "refreshing" }));
  return el(
    "li",
    { class: "check", "data-tone": spec.tone },
    el("div", { class: "check-main" },
      mark(spec),
      el("span", { class: "check-name", text: check.name }),
      el("span", { class: "tag", text: check.type }),
      check.critical ? null : el("span", { class: "tag", text: "non-critical" })),
    meta,
    check.output ? el("div", { class: "check-output", title: check.output, text: check.output }) : null,
  );
}

// -- events ---------------------------------------------------------------------------------

function describe(ev) {
  switch (ev.kind) {
    case "breaker.state_changed": {
      const to = BREAKER_STATES[ev.new] ?? { tone: "off" };
      const from = BREAKER_STATES[ev.old]?.label ?? ev.old;
      return { tone: to.tone, text: `${from} → ${to.label ?? ev.new}`, more: ev.reason };
    }
    case "health.alert":
      return { tone: CHECK_STATES[ev.new]?.tone ?? "warn", text: `${ev.old} → ${ev.new}`, more: ev.output };
    case "retry.exhausted":
      return { tone: "fail", text: `gave up after ${ev.attempts} attempts (${ev.reason})`, more: ev.error };
    case "retry.scheduled":
      return { tone: "warn", text: `attempt ${ev.attempt} failed; retry in ${duration(ev.delay)}`, more: ev.error };
    case "timeout.expired":
      return { tone: "warn", text: `call exceeded ${duration(ev.seconds)}` };
    case "degradation.changed": {
      const rank = ["normal", "minor", "moderate", "severe", "critical", "maintenance"];
      const tone = ev.new === "normal" ? "pass" : rank.indexOf(ev.new) > rank.indexOf(ev.old) ? "fail" : "warn";
      return { tone, text: `level ${ev.old} → ${ev.new}${ev.actor ? ` by ${ev.actor}` : ""}`, more: ev.reason };
    }
    case "flag.changed":
      return { tone: "info", text: `${ev.action} by ${ev.actor}`, more: ev.reason };
    case "flag.suspended":
      return { tone: ev.suspended ? "warn" : "pass", text: ev.suspended ? "switched off on its own" : "back on", more: ev.cause };
    default: {
      const rest = Object.entries(ev).filter(([k]) => !["kind", "source", "time", "seq"].includes(k));
      return { tone: "info", text: ev.kind, more: rest.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ") };
    }
  }
}

export function renderEvents(events, list) {
  for (const ev of events) {
    const { tone, text, more } = describe(ev);
    const item = el(
      "li",
      { class: "event", "data-tone": tone, "data-seq": String(ev.seq) },
      el("time", { class: "event-time", title: new Date(ev.time * 1000).toISOString(), text: clock(ev.time) }),
      el("span", { class: "chip", text: ev.kind.split(".")[0] }),
      el("span", { class: "event-body" },
        el("strong", { text: ev.source }), " ", el("span", { text }),
        more ? el("span", { class: "event-more", title: more, text: ` · ${more}` }) : null),
    );
    list.prepend(item);
  }
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  const shown = list.children.length;
  $("events-empty").hidden = shown > 0;
  setText($("events-count"), shown ? String(shown) : "");
  const newest = list.firstElementChild;
  const hour = serverClock.now() - 3600;
  const times = [...list.querySelectorAll("time")].map((t) => Date.parse(t.title) / 1000);
  setText($("tile-events"), `${count(times.filter((t) => t >= hour).length)} in the last hour`);
  setText($("tile-events-sub"), newest ? `latest: ${newest.querySelector(".event-body").textContent}` : "none yet");
}

// -- pipelines ------------------------------------------------------------------------------

function options(policy) {
  const o = policy.options ?? {};
  switch (policy.policy) {
    case "Timeout": return duration(o.seconds);
    case "Retry": return `${o.attempts ?? "?"} attempts${o.backoff?.kind ? `, ${o.backoff.kind}` : ""}`;
    case "CircuitBreaker": return `opens at ${percent(o.failure_rate)}`;
    case "Bulkhead": return `${o.max_concurrent ?? "?"} at once`;
    default:
      return Object.entries(o).filter(([, v]) => v !== null && typeof v !== "object").slice(0, 2).map(([k, v]) => `${k} ${v}`).join(", ");
  }
}

function policyItem(policy) {
  const item = el("li", { class: "policy", "data-kind": policy.policy },
    el("span", { class: "policy-kind", text: policy.policy }),
    el("span", { class: "policy-name", text: policy.name ?? "" }));
  if (policy.policies) item.append(el("ol", { class: "chain nested" }, ...policy.policies.map(policyItem)));
  else {
    const text = options(policy);
    if (text) item.append(el("span", { class: "policy-opt", text }));
  }
  if (policy.policy === "CircuitBreaker") item.append(el("span", { class: "policy-state", "data-breaker": policy.name }));
  return item;
}

export function renderPipelines(pipelines, breakers) {
  $("pipelines").replaceChildren(...pipelines.map((p) =>
    el("li", { class: "pipeline" },
      el("div", { class: "pipeline-name", text: p.name }),
      el("ol", { class: "chain", "aria-label": `${p.name}, outermost policy first` }, ...(p.policies ?? []).map(policyItem)))));
  $("pipelines-empty").hidden = pipelines.length > 0;
  setText($("pipelines-empty"), "No pipelines.");
  updatePipelineMarks(breakers);
}

export function updatePipelineMarks(breakers) {
  for (const node of document.querySelectorAll("[data-breaker]")) {
    const data = breakers.get(node.dataset.breaker)?.data;
    const spec = BREAKER_STATES[data?.state] ?? { label: "unknown", tone: "off", shape: "ring" };
    if (!node.firstChild) node.append(mark(spec));
    else updateMark(node.firstChild, spec);
  }
}

// -- jobs -----------------------------------------------------------------------------------

/** `result`: {jobs: [...]}, or {missing: true} (no scheduler), or {error: "..."}. */
export function renderJobs(result) {
  const table = $("jobs-table");
  const empty = $("jobs-empty");
  if (!result.jobs) {
    table.hidden = true;
    empty.hidden = false;
    setText(empty, result.missing ? "No scheduler." : result.error);
    return;
  }
  table.hidden = result.jobs.length === 0;
  empty.hidden = result.jobs.length > 0;
  setText(empty, "No scheduled jobs.");
  $("job-rows").replaceChildren(...result.jobs.map((job) => {
    const last = job.last ?? null;
    const spec = job.running ? JOB_OUTCOMES.running : JOB_OUTCOMES[last?.outcome ?? "none"] ?? JOB_OUTCOMES.none;
    const started = epoch(last?.started);
    const next = epoch(job.next_run);
    const status = mark(spec);
    if (started) status.title = `started ${new Date(started * 1000).toLocaleString()}`;
    return el("tr", {},
      el("td", { class: "state" }, status),
      el("th", { scope: "row", class: "name" }, job.name,
        last?.error ? el("div", { class: "job-error", title: last.error, text: last.error }) : null),
      el("td", { class: "num", text: duration(job.interval) }),
      el("td", { class: "num", text: count(job.runs) }),
      el("td", { class: "num", text: count(job.failures) }),
      el("td", { class: "num", text: count(job.skipped) }),
      el("td", { class: "num", text: last ? duration(last.duration) : "–" }),
      el("td", { class: "num" }, next ? age(next, "until") : "–"));
  }));
}
