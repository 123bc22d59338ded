// The feature-flag panel: one row per flag with its status, an on/off switch, the kill
// switch, a rollout slider, and its variants and targeting rules summarised.
import { RowSet } from "./rows.js";
import { el, mark, setData, setText, updateMark } from "./views.js";

const $ = (id) => document.getElementById(id);

export const FLAG_STATES = {
  on: { label: "on", tone: "pass", shape: "circle" },
  partial: { label: "partial", tone: "info", shape: "triangle" },
  off: { label: "off", tone: "off", shape: "ring" },
  suspended: { label: "suspended", tone: "warn", shape: "triangle" },
  killed: { label: "killed", tone: "fail", shape: "hatched" },
};
const OPS = { in: "in", not_in: "not in", equals: "=" };

let page = null;
let rows = null;

/** "tenant in acme, beta → 50%" */
function ruleText(rule) {
  const values = rule.values.length > 3 ? `${rule.values.slice(0, 3).join(", ")} +${rule.values.length - 3}` : rule.values.join(", ");
  let outcome = rule.enabled ? "on" : "off";
  if (rule.enabled && rule.rollout !== null) outcome = `${rule.rollout}%`;
  if (rule.variant) outcome += ` (${rule.variant})`;
  return `${rule.attribute} ${OPS[rule.op] ?? rule.op} ${values} → ${outcome}`;
}

function variantsText(variants) {
  const total = variants.reduce((sum, v) => sum + v.weight, 0) || 1;
  return variants.map((v) => `${v.name} ${Math.round((v.weight / total) * 100)}%`).join(" · ");
}

function createRow(name) {
  const button = (action, text, cls) =>
    el("button", { type: "button", class: `small ${cls}`, "data-action": action, "aria-label": `${text} ${name}`, text });
  const parts = {
    mark: mark(FLAG_STATES.off),
    description: el("div", { class: "cap-detail" }),
    tags: el("span", { class: "flag-tags" }),
    toggle: el("button", { type: "button", class: "switch", role: "switch", "data-action": "toggle", "aria-label": `Flag ${name} enabled` },
      el("span", { class: "switch-track", "aria-hidden": "true" }, el("span", { class: "switch-knob" })),
      el("span", { class: "switch-word" })),
    slider: el("input", { type: "range", min: "0", max: "100", step: "1", class: "rollout", "aria-label": `Rollout of ${name}` }),
    percent: el("output", { class: "rollout-value" }),
    variants: el("td", { class: "flag-variants" }),
    rules: el("td", { class: "flag-rules" }),
    kill: button("kill", "Kill", "trip"),
    revive: button("revive", "Revive", "reset"),
  };
  const row = el("tr", {},
    el("td", { class: "state" }, parts.mark),
    el("th", { scope: "row", class: "name wide", title: name }, name, parts.tags, parts.description),
    el("td", { class: "switch-cell" }, parts.toggle),
    el("td", { class: "rollout-cell" }, el("span", { class: "rollout-box" }, parts.slider, parts.percent)),
    parts.variants,
    parts.rules,
    el("td", { class: "actions" }, parts.kill, parts.revive));
  parts.slider.addEventListener("input", () => {
    parts.dragging = true;
    setText(parts.percent, `${parts.slider.value}%`);
  });
  parts.slider.addEventListener("change", () => changeRollout(name, parts));
  return { row, ...parts };
}

function updateRow(entry, flag) {
  const spec = FLAG_STATES[flag.status] ?? { label: flag.status, tone: "off", shape: "ring" };
  updateMark(entry.mark, spec);
  entry.mark.title = flag.cause ?? "";
  setData(entry.row, "status", flag.status);
  setData(entry.row, "kind", flag.kind);
  entry.text = `${flag.description} ${flag.kind}`;
  setText(entry.description, flag.cause ? `off on its own: ${flag.cause}` : flag.description);
  entry.description.title = entry.description.textContent;
  const tags = [flag.kind === "variant" ? "variants" : null, flag.off_at ? `off at ${flag.off_at}` : null,
    ...flag.requires.map((check) => `needs ${check}`)].filter(Boolean);
  if (entry.tags.dataset.text !== tags.join("|")) {
    entry.tags.dataset.text = tags.join("|");
    entry.tags.replaceChildren(...tags.map((text) => el("span", { class: "tag", text })));
  }
  entry.toggle.setAttribute("aria-checked", String(flag.enabled));
  setText(entry.toggle.lastChild, flag.enabled ? "on" : "off");
  entry.toggle.disabled = flag.killed;
  entry.toggle.title = flag.killed ? "Killed: revive it first" : "";
  if (!entry.dragging) {
    entry.slider.value = String(flag.rollout);
    setText(entry.percent, `${flag.rollout}%`);
  }
  setText(entry.variants, flag.variants.length ? variantsText(flag.variants) : "–");
  entry.variants.title = flag.variants.map((v) => `${v.name}: weight ${v.weight}${v.value === null ? "" : `, value ${JSON.stringify(v.value)}`}`).join("\n");
  const rules = flag.rules.map(ruleText);
  setText(entry.rules, rules.length ? rules.slice(0, 2).join("; ") + (rules.length > 2 ? `; +${rules.length - 2} more` : "") : "everyone");
  entry.rules.title = [...rules, `bucketed by ${flag.stickiness}${flag.group ? ` in group ${flag.group}` : ""}`].join("\n");
  entry.kill.hidden = flag.killed;
  entry.revive.hidden = !flag.killed;
}

function render(data) {
  rows.apply(data.flags, (flag) => flag.name);
  const store = $("flags-store");
  store.hidden = !data.degraded;
  setText(store, data.degraded ? "store unreachable: showing the last flags read" : "");
}

// -- changes --------------------------------------------------------------------------------

const CHANGES = {
  enable: { title: (n) => `Turn on flag “${n}”?`, text: "It serves its rollout and rules again.", label: "Turn on" },
  disable: { title: (n) => `Turn off flag “${n}”?`, text: "It is off for everyone until turned on.", label: "Turn off", danger: true },
  kill: { title: (n) => `Kill flag “${n}”?`, text: "The kill switch keeps it off for everyone, whatever else is set, until it is revived.", label: "Kill flag", danger: true },
  revive: { title: (n) => `Revive flag “${n}”?`, text: "The kill switch is released: the flag's own settings apply again.", label: "Revive" },
};

function applied(result) {
  if (result.after && result.status) {
    const entry = rows.rows.get(result.name);
    if (entry) updateRow(entry, { ...result.after, status: result.status, cause: null });
  }
  page.reload();
}

function change(name, action) {
  const spec = CHANGES[action];
  page.operate({
    title: spec.title(name),
    text: spec.text,
    label: spec.label,
    danger: spec.danger,
    what: "change a flag",
    run: (bearer, { reason }) => page.send("POST", `flags/${encodeURIComponent(name)}/${action}`, { body: reason ? { reason } : {}, bearer }),
    done: (result) => {
      applied(result);
      page.toast(`Flag “${name}”: ${result.status ?? action}.`, "pass");
    },
  });
}

function changeRollout(name, parts) {
  const value = Number(parts.slider.value);
  const before = rows.rows.get(name)?.item?.rollout;
  const restore = () => {
    parts.dragging = false;
    if (before !== undefined) {
      parts.slider.value = String(before);
      setText(parts.percent, `${before}%`);
    }
  };
  if (value === before) {
    parts.dragging = false;
    return;
  }
  page.operate({
    title: `Roll flag “${name}” out to ${value}%?`,
    text: `From ${before}% of subjects to ${value}% (bucketed as Unleash does, so a subject keeps its answer).`,
    label: "Change rollout",
    what: "change a flag",
    cancelled: restore,
    run: (bearer, { reason }) => page.send("PATCH", `flags/${encodeURIComponent(name)}`, { body: reason ? { rollout: value, reason } : { rollout: value }, bearer }),
    done: (result) => {
      parts.dragging = false;
      applied(result);
      page.toast(`Flag “${name}” rolled out to ${value}%.`, "pass");
    },
  });
}

export const flagsPanel = {
  id: "flags-panel",
  path: "flags",
  every: 10,
  kinds: ["flag."],
  init(ctx) {
    page = ctx;
    rows = new RowSet({
      body: $("flag-rows"),
      count: $("flags-count"),
      empty: $("flags-empty"),
      filter: $("flags-filter"),
      select: $("flags-status"),
      create: createRow,
      update: updateRow,
      match: (entry, choice) => entry.item.status === choice,
    });
    $("flag-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || button.disabled) return;
      const entry = rows.rows.get(button.closest("tr").dataset.name);
      if (!entry) return;
      const action = button.dataset.action;
      change(entry.key, action === "toggle" ? (entry.item.enabled ? "disable" : "enable") : action);
    });
  },
  render,
};
