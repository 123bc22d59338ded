// The degradation panel: the level (large, on its scale), why, the manual override, the
// features and rules, the recent changes and the level's timeline; set level and clear.
import { LevelTimeline } from "./charts.js";
import { age } from "./panels.js";
import { clock, count, el, epoch, mark, serverClock, setData, setText, updateMark } from "./views.js";

const $ = (id) => document.getElementById(id);

// Each level has a shape as well as a colour, and always its word.
export const LEVELS = {
  normal: { label: "normal", tone: "pass", shape: "circle" },
  minor: { label: "minor", tone: "warn", shape: "triangle" },
  moderate: { label: "moderate", tone: "warn", shape: "square" },
  severe: { label: "severe", tone: "fail", shape: "square" },
  critical: { label: "critical", tone: "fail", shape: "hatched" },
  maintenance: { label: "maintenance", tone: "info", shape: "ring" },
};
const UNKNOWN = { label: "unknown", tone: "off", shape: "ring" };
const EXPIRIES = [["", "until cleared"], ["900", "in 15 minutes"], ["3600", "in 1 hour"], ["14400", "in 4 hours"], ["86400", "in 24 hours"]];
const MAX_CHANGES = 8;

let page = null; // the page's API (capabilities.js)
let status = null;
let chart = null;
const levelMark = mark(UNKNOWN);

function levelSpec(name) {
  return LEVELS[name] ?? { ...UNKNOWN, label: name };
}

function build(levels) {
  chart = new LevelTimeline(levels);
  $("degradation-timeline").replaceChildren(chart.node);
  $("degradation-level").replaceChildren(levelMark);
  $("degradation-scale").replaceChildren(
    ...levels.map((name) => el("li", { "data-level": name, "data-tone": levelSpec(name).tone, title: name }, el("span", { text: name }))),
  );
}

function render(data) {
  status = data;
  if (!chart) build(data.levels);
  const spec = levelSpec(data.level);
  updateMark(levelMark, spec);
  setData($("degradation-level"), "tone", spec.tone);
  setData($("degradation-level"), "level", data.level);
  for (const item of $("degradation-scale").children) {
    const index = data.levels.indexOf(item.dataset.level);
    setData(item, "at", index < data.value ? "below" : index === data.value ? "current" : "above");
  }
  setText($("degradation-name"), data.name);
  setText($("degradation-reason"), reasonOf(data));
  renderMeta(data);
  renderOverride(data.override, data.computed);
  renderFeatures(data.features);
  renderRules(data.rules);
  renderChanges(data.history);
  $("degradation-clear").hidden = !data.override;
  drawChart();
}

/** Why the level is what it is: the override's reason, the rules holding, or the last change. */
function reasonOf(data) {
  if (data.override) return `Set by hand: ${data.override.reason}`;
  const held = data.rules.filter((rule) => rule.holds).map((rule) => rule.reason || rule.name);
  if (held.length) return held.join(" · ");
  const last = data.history.at(-1);
  if (data.level !== "normal" && last) return last.reason;
  return "No rule holds: every dependency is fine.";
}

function renderMeta(data) {
  const parts = [el("span", {}, "since ", age(epoch(data.since)))];
  if (data.computed !== data.level) parts.push(el("span", { text: `rules say ${data.computed}` }));
  if (data.falls_to && data.falls_at) {
    parts.push(el("span", {}, `falls to ${data.falls_to} `, age(epoch(data.falls_at), "until")));
  }
  parts.push(el("span", { text: `${count(data.changes)} changes` }));
  $("degradation-meta").replaceChildren(...parts);
}

function renderOverride(override, computed) {
  const box = $("degradation-override");
  box.hidden = !override;
  if (!override) return;
  const until = epoch(override.expires_at);
  box.replaceChildren(
    el("strong", { text: `Manual override: ${override.level}` }),
    el("span", { text: ` by ${override.actor}, ` }),
    age(epoch(override.set_at)),
    el("br"),
    until ? el("span", {}, `until ${clock(until)} (`, age(until, "until"), ")") : el("span", { text: "until cleared" }),
    el("span", { class: "muted", text: ` · the rules say ${computed}` }),
  );
}

function renderFeatures(features) {
  const off = features.filter((f) => !f.enabled).length;
  setText($("degradation-features-count"), features.length ? `${features.length - off} of ${features.length} on` : "");
  $("degradation-features-empty").hidden = features.length > 0;
  $("degradation-features").replaceChildren(...features.map((feature) =>
    el("li", { class: "cap-item", "data-name": feature.name, "data-state": feature.enabled ? "on" : "off" },
      mark(feature.enabled ? { label: "on", tone: "pass", shape: "circle" } : { label: "off", tone: "warn", shape: "square" }),
      el("span", { class: "cap-name", text: feature.name }),
      el("span", { class: "tag", text: `off at ${feature.off_at}` }),
      feature.fallback_used ? el("span", { class: "muted small", text: `fallback ×${count(feature.fallback_used)}` }) : null)));
}

function renderRules(rules) {
  $("degradation-rules-empty").hidden = rules.length > 0;
  setText($("degradation-rules-count"), rules.length ? `${rules.filter((r) => r.holds).length} of ${rules.length} hold` : "");
  const order = (rule) => (rule.error ? 0 : rule.holds ? 1 : 2);
  const sorted = [...rules].sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name));
  $("degradation-rules").replaceChildren(...sorted.map((rule) => {
    const spec = rule.error ? { label: "error", tone: "fail", shape: "square" }
      : rule.holds ? { ...levelSpec(rule.level), label: "holds" } : { label: "clear", tone: "off", shape: "ring" };
    const detail = rule.error || rule.reason;
    return el("li", { class: "cap-item", "data-name": rule.name },
      mark(spec),
      el("span", { class: "cap-name", text: rule.name }),
      el("span", { class: "tag", text: rule.kind }),
      el("span", { class: "muted small", text: `→ ${rule.level}` }),
      detail ? el("div", { class: "cap-detail", title: detail, text: detail }) : null);
  }));
}

function renderChanges(history) {
  const recent = history.slice(-MAX_CHANGES).reverse();
  $("degradation-changes").replaceChildren(...recent.map((change) =>
    el("li", { class: "event", "data-tone": levelSpec(change.new).tone },
      el("time", { class: "event-time", title: new Date(change.time * 1000).toISOString(), text: clock(change.time) }),
      el("span", { class: "chip", text: change.new }),
      el("span", { class: "event-body" },
        el("span", { text: `${change.old} → ${change.new}` }),
        change.actor ? el("strong", { text: ` by ${change.actor}` }) : null,
        el("span", { class: "event-more", title: change.reason, text: ` · ${change.reason}` })))));
  $("degradation-changes-empty").hidden = recent.length > 0;
}

function drawChart() {
  if (!chart || !status) return;
  const span = Number($("degradation-window").value);
  chart.draw({ changes: status.history, current: status.level, now: serverClock.now(), span });
}

// -- actions --------------------------------------------------------------------------------

function field(label, input) {
  return el("label", { class: "field" }, el("span", { text: label }), input);
}

function setLevel() {
  if (!status) return;
  const levels = status.levels;
  const proposed = levels[Math.min(status.value + 1, levels.length - 1)];
  const level = el("select", { id: "level-select", name: "level" },
    ...levels.map((name) => el("option", { value: name, text: name, selected: name === proposed })));
  const expiry = el("select", { id: "expiry-select", name: "expires_in" },
    ...EXPIRIES.map(([value, text]) => el("option", { value, text, selected: value === "3600" })));
  page.operate({
    title: "Set the degradation level",
    text: "The level is held by hand until the override expires or is cleared; the rules keep being evaluated underneath.",
    label: "Set level",
    reason: "required",
    fields: [field("Level", level), field("Expires", expiry)],
    what: "set the degradation level",
    run: (bearer, { reason }) => {
      const query = new URLSearchParams({ level: level.value, reason });
      if (expiry.value) query.set("expires_in", expiry.value);
      return page.send("POST", `degradation/set-level?${query}`, { bearer });
    },
    done: (result) => {
      render({ ...status, ...result.after });
      page.toast(`Degradation level set to ${result.after.level}.`, "pass");
      page.reload();
    },
  });
}

function clearOverride() {
  if (!status?.override) return;
  page.operate({
    title: "Clear the manual override?",
    text: `The level goes back to what the rules say (${status.computed}).`,
    label: "Clear override",
    what: "clear the degradation override",
    run: (bearer, { reason }) => page.send("POST", "degradation/clear", { body: reason ? { reason } : null, bearer }),
    done: (result) => {
      render({ ...status, ...result.after });
      page.toast(`Override cleared: the level is ${result.after.level}.`, "pass");
      page.reload();
    },
  });
}

export const degradationPanel = {
  id: "degradation-panel",
  path: "degradation",
  every: 5,
  kinds: ["degradation."],
  init(ctx) {
    page = ctx;
    $("degradation-set").addEventListener("click", setLevel);
    $("degradation-clear").addEventListener("click", clearOverride);
    $("degradation-window").addEventListener("change", drawChart);
  },
  render,
  tick: drawChart,
};
