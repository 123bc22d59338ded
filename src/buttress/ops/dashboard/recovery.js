// The backups panel: per backup name, the newest success (marked stale when it is older than
// its schedule allows), the newest failure when it came after it, stored size over time, and
// the newest restore drill with its RTO and RPO. An operator verifies the newest backup and
// runs a drill; a viewer token sees no button (the list says the reader's role). The file is
// not "backups.js": tests and tools pick the backup routes by "backups" in a path.
import { svg } from "./charts.js";
import { age } from "./panels.js";
import { RowSet } from "./rows.js";
import { count, duration, el, mark, serverClock, setData, setText, updateMark } from "./views.js";

const $ = (id) => document.getElementById(id);
const MAX_CHECK = 3600; // buttress.backup._schedule: a schedule is checked every quarter of it, at most hourly
const POLL = 2000; // ms between reads of a verification still running
const POLLS = 90;

export const BACKUP_STATES = {
  ok: { label: "ok", tone: "pass", shape: "circle" },
  stale: { label: "stale", tone: "warn", shape: "triangle" },
  failing: { label: "failing", tone: "fail", shape: "square" },
  none: { label: "none yet", tone: "off", shape: "ring" },
};
const DRILL_STATES = {
  passed: { label: "passed", tone: "pass", shape: "circle" },
  failed: { label: "failed", tone: "fail", shape: "square" },
  running: { label: "running", tone: "info", shape: "ring" },
  none: { label: "never", tone: "off", shape: "ring" },
};
const VERIFY_STATES = {
  ok: { label: "verified", tone: "pass", shape: "circle" },
  failed: { label: "verify failed", tone: "fail", shape: "square" },
  running: { label: "verifying", tone: "info", shape: "ring" },
};

let page = null;
let rows = null;
let role = null; // the reader's role: "viewer", "operator", or null (public reads, no token)
const verifications = new Map(); // backup id -> {state, text}
const drilling = new Map(); // name -> {id: its newest drill when one was started here, until}
const DRILL_WAIT = 3600; // seconds a drill started here shows as running, at most

/** "512 B", "3.1 MiB": bytes in binary units. */
export function bytes(n) {
  if (typeof n !== "number") return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}` : `${n} B`;
}

const when = (seconds) => new Date(seconds * 1000).toLocaleString([], { hour12: false });

/** How old the newest success may be: the schedule's interval and the scheduler's check. */
function allowedAge(item) {
  const every = item.schedule?.every;
  return typeof every === "number" ? every + Math.min(every / 4, MAX_CHECK) : null;
}

/** The newest attempt failed: a failure that started after the newest success finished. */
function failedSince(item) {
  const failure = item.last_failure;
  if (!failure) return null;
  const success = item.last_success;
  return !success || failure.started_at > (success.finished_at ?? success.started_at) ? failure : null;
}

function statusOf(item) {
  if (failedSince(item)) return "failing";
  if (!item.last_success) return "none";
  const allowed = allowedAge(item);
  const old = serverClock.now() - item.last_success.finished_at;
  return allowed !== null && old > allowed ? "stale" : "ok";
}

// -- the size chart ---------------------------------------------------------------------------

class SizeChart {
  constructor(width = 110, height = 26) {
    Object.assign(this, { width, height });
    this.title = svg("title");
    this.line = svg("polyline", { class: "spark-line" });
    this.dot = svg("circle", { class: "spark-dot", r: 0 });
    this.svg = svg("svg", { class: "spark size-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" },
      this.title, svg("line", { class: "spark-base", x1: 0, x2: width, y1: height - 2, y2: height - 2 }), this.line, this.dot);
  }

  /** `points`: [time, bytes] pairs, oldest first. */
  draw(points) {
    const key = points.map((p) => p.join(":")).join(",");
    if (key === this.key) return;
    this.key = key;
    if (!points.length) {
      this.line.setAttribute("points", "");
      this.dot.setAttribute("r", "0");
      this.title.textContent = "No completed backup yet";
      return;
    }
    const first = points[0][0];
    const span = points.at(-1)[0] - first;
    const peak = Math.max(1, ...points.map((p) => p[1]));
    const x = (p, i) => (span > 0 ? ((p[0] - first) / span) * (this.width - 4) + 2 : points.length > 1 ? (i / (points.length - 1)) * (this.width - 4) + 2 : this.width - 2);
    const y = (p) => this.height - 2 - (p[1] / peak) * (this.height - 5);
    const coords = points.map((p, i) => `${x(p, i).toFixed(1)},${y(p).toFixed(1)}`);
    this.line.setAttribute("points", coords.join(" "));
    const [lx, ly] = coords.at(-1).split(",");
    for (const [k, v] of [["cx", lx], ["cy", ly], ["r", "2"]]) this.dot.setAttribute(k, v);
    const sizes = points.map((p) => p[1]);
    this.title.textContent = `${count(points.length)} backups from ${when(first)} to ${when(points.at(-1)[0])}: ` +
      `${bytes(Math.min(...sizes))} to ${bytes(Math.max(...sizes))}, newest ${bytes(sizes.at(-1))}`;
  }
}

// -- rows -------------------------------------------------------------------------------------

function createRow(name) {
  const button = (action, text) =>
    el("button", { type: "button", class: "small", "data-action": action, "aria-label": `${text} ${name}`, text });
  const parts = {
    mark: mark(BACKUP_STATES.none),
    tags: el("span", { class: "backup-tags" }),
    success: el("td", { class: "backup-when" }),
    failure: el("td", { class: "backup-when backup-failure" }),
    chart: new SizeChart(),
    size: el("span", { class: "size-now" }),
    drillMark: mark(DRILL_STATES.none),
    drillAge: el("span", { class: "backup-detail" }),
    rto: el("td", { class: "num backup-rto" }),
    rpo: el("td", { class: "num backup-rpo" }),
    verify: button("verify", "Verify"),
    drill: button("drill", "Run drill"),
  };
  const row = el("tr", {},
    el("td", { class: "state" }, parts.mark),
    el("th", { scope: "row", class: "name wide", title: name }, el("span", { class: "cap-name", text: name }), parts.tags),
    parts.success,
    parts.failure,
    el("td", { class: "size-cell" }, el("span", { class: "size-box" }, parts.chart.svg, parts.size)),
    el("td", { class: "backup-drill" }, parts.drillMark, parts.drillAge),
    parts.rto,
    parts.rpo,
    el("td", { class: "actions" }, parts.verify, parts.drill));
  return { row, ...parts };
}

function setTags(entry, tags) {
  const key = tags.join("|");
  if (entry.tags.dataset.text === key) return;
  entry.tags.dataset.text = key;
  entry.tags.replaceChildren(...tags.map((text) => el("span", { class: "tag", text })));
}

function renderSuccess(entry, item, status) {
  const success = item.last_success;
  if (!success) {
    entry.success.replaceChildren(el("span", { class: "muted", text: item.schedule ? "none yet" : "–" }));
    entry.shown = null;
    return;
  }
  const verification = verifications.get(success.id);
  const shown = `${success.id} ${status === "stale"} ${verification?.state} ${verification?.text}`;
  if (entry.shown !== shown) {
    entry.shown = shown;
    const allowed = allowedAge(item);
    const node = age(success.finished_at);
    node.title = `${when(success.finished_at)} · ${success.kind} ${success.id}`;
    const detail = `${success.kind} · ${bytes(success.size)}${typeof success.duration_seconds === "number" ? ` · took ${duration(success.duration_seconds)}` : ""}`;
    entry.success.replaceChildren(...[
      node,
      status === "stale" ? el("span", { class: "tag warn-tag", text: "stale", title: `older than its schedule allows (${duration(allowed)})` }) : null,
      el("div", { class: "backup-detail", text: detail }),
      verification ? el("div", { class: "backup-verified", title: verification.text }, mark(VERIFY_STATES[verification.state])) : null,
    ].filter(Boolean));
  }
  setData(entry.success, "stale", String(status === "stale"));
  entry.success.title = status === "stale" ? `Older than expected: backed up every ${duration(item.schedule.every)}` : "";
}

function renderFailure(entry, item) {
  const failure = failedSince(item);
  const key = failure ? `${failure.id}` : `none ${item.last_failure?.id}`;
  if (entry.failed === key) return;
  entry.failed = key;
  if (!failure) {
    entry.failure.replaceChildren("–");
    entry.failure.title = item.last_failure ? `older failure ${when(item.last_failure.started_at)}: ${item.last_failure.error ?? ""}` : "";
    return;
  }
  const node = age(failure.started_at);
  node.title = when(failure.started_at);
  entry.failure.replaceChildren(node, el("div", { class: "backup-detail backup-error", title: failure.error ?? "", text: failure.error ?? "failed" }));
  entry.failure.title = "";
}

function renderDrill(entry, item) {
  const drill = item.last_drill;
  const started = drilling.get(item.name);
  const running = started !== undefined && (drill?.id ?? null) === started.id && serverClock.now() < started.until;
  if (!running) drilling.delete(item.name);
  const state = running ? "running" : !drill ? "none" : drill.ok ? "passed" : "failed";
  updateMark(entry.drillMark, DRILL_STATES[state]);
  setData(entry.row, "drill", state);
  entry.drillMark.title = drill?.error ?? "";
  const key = drill ? `${drill.id} ${drill.finished_at}` : "none";
  if (entry.drilled !== key) {
    entry.drilled = key;
    entry.drillAge.replaceChildren(...(drill ? [age(drill.finished_at)] : []));
    entry.drillAge.title = drill ? `${when(drill.finished_at)}${drill.backup_id ? ` · restored ${drill.backup_id}` : ""}` : "";
  }
  setText(entry.rto, drill ? duration(drill.rto_seconds) : "–");
  entry.rto.title = drill ? "Recovery time: from the drill's start to a checked restore" : "";
  setText(entry.rpo, drill ? duration(drill.rpo_seconds) : "–");
  entry.rpo.title = drill ? "Recovery point: the age of the newest restored data when the drill began" : "";
}

function updateRow(entry, item) {
  const status = statusOf(item);
  entry.status = status;
  updateMark(entry.mark, BACKUP_STATES[status]);
  setData(entry.row, "status", status);
  entry.text = item.strategy ?? "";
  const every = item.schedule?.every;
  setTags(entry, [item.strategy, typeof every === "number" ? `every ${duration(every)}` : "not scheduled"].filter(Boolean));
  renderSuccess(entry, item, status);
  renderFailure(entry, item);
  entry.chart.draw(item.sizes);
  setText(entry.size, bytes(item.sizes.at(-1)?.[1]));
  entry.size.title = `${count(item.completed)} completed, ${bytes(item.stored_bytes)} stored in all`;
  renderDrill(entry, item);
  const operator = role !== "viewer";
  entry.verify.hidden = !operator;
  entry.drill.hidden = !operator;
  entry.verify.disabled = !item.last_success;
  entry.drill.disabled = !item.last_success;
  entry.verify.title = item.last_success ? `Re-hash every file of ${item.last_success.id}, the newest backup` : "No backup to verify yet";
  entry.drill.title = item.last_success ? "Restore the newest backup into scratch and check it" : "No backup to restore yet";
}

function summarise() {
  const tally = {};
  for (const entry of rows.rows.values()) if (entry.status !== "ok") tally[entry.status] = (tally[entry.status] ?? 0) + 1;
  setText($("backups-summary"), Object.entries(tally).map(([status, n]) => `${n} ${BACKUP_STATES[status].label}`).join(" · "));
}

function render(data) {
  role = data.role ?? null;
  setText($("backups-destination"), data.destination);
  rows.apply(data.backups, (item) => item.name);
  summarise();
}

/** Once a second: a success can become stale while nothing else changes. */
function tick() {
  let changed = false;
  for (const entry of rows.rows.values()) {
    if (entry.item && statusOf(entry.item) !== entry.status) {
      updateRow(entry, entry.item);
      changed = true;
    }
  }
  if (changed) summarise();
}

// -- actions ----------------------------------------------------------------------------------

function checksText(result) {
  return result.checks.map((c) => `${c.ok ? "✓" : "✗"} ${c.name}${c.detail ? `: ${c.detail}` : ""}`).join("\n");
}

function showVerification(id, result) {
  const failed = result.checks.filter((c) => !c.ok);
  const state = result.ok ? "ok" : "failed";
  verifications.set(id, { state, text: `${result.deep ? "deep " : ""}verification at ${when(serverClock.now())}\n${checksText(result)}` });
  const what = `${count(result.checks.length)} check${result.checks.length === 1 ? "" : "s"}`;
  if (result.ok) page.toast(`Backup ${id} verified${result.deep ? " (restored into scratch)" : ""}: ${what} ok.`, "pass");
  else page.toast(`Backup ${id} failed verification: ${failed.map((c) => c.name).join(", ")}.`, "fail");
  refresh();
}

function refresh() {
  for (const entry of rows.rows.values()) if (entry.item) updateRow(entry, entry.item);
}

/** Read the verification of `id` until it ends (it went on after the answer, 202). */
async function follow(id, left = POLLS) {
  try {
    const data = await page.getJSON(`backups/${encodeURIComponent(id)}`);
    const check = data.verification;
    if (check && !check.running) {
      showVerification(id, check);
      return;
    }
  } catch {
    // the next read may work; the panel says when the list cannot be read
  }
  if (left > 1) setTimeout(() => follow(id, left - 1), POLL);
  else verifications.delete(id);
}

function running(id, text) {
  verifications.set(id, { state: "running", text });
  refresh();
  follow(id);
}

/** A 409 (the same work is running) as a result, not a failure of the dialog. */
async function orBusy(request) {
  try {
    return await request;
  } catch (error) {
    if (error.status === 409) return { busy: true, detail: error.body?.detail ?? "" };
    throw error;
  }
}

function verify(entry) {
  const backup = entry.item.last_success;
  if (!backup) return;
  const deep = el("input", { id: "backup-deep", type: "checkbox" });
  page.operate({
    title: `Verify backup ${backup.id}?`,
    text: `Every file of the newest backup of “${entry.key}” (${bytes(backup.size)}) is read again and its checksum compared.`,
    label: "Verify",
    fields: [el("label", { class: "check-field" }, deep, el("span", { text: " Also restore it into scratch and check the copy (slower)" }))],
    what: "verify a backup",
    run: (bearer, { reason }) => {
      const body = reason ? { deep: deep.checked, reason } : { deep: deep.checked };
      return orBusy(page.send("POST", `backups/${encodeURIComponent(backup.id)}/verify`, { body, bearer }));
    },
    done: (answer) => {
      if (answer.busy) {
        page.toast(`Backup ${backup.id} is already being verified: its result shows here when it ends.`);
        running(backup.id, "being verified");
      } else if (answer.result === null) {
        page.toast(`Verifying backup ${backup.id} takes a while: its result shows here when it ends.`);
        running(backup.id, "being verified");
      } else showVerification(backup.id, answer.result);
    },
  });
}

function drill(entry) {
  const name = entry.key;
  const backup = entry.item.last_success;
  page.operate({
    title: `Run a restore drill of “${name}”?`,
    text: `The newest backup${backup ? ` (${backup.id}, ${bytes(backup.size)})` : ""} is restored into a scratch location and checked; ` +
      "its recovery time (RTO) and recovery point (RPO) are recorded. It reads the whole backup and may take a while.",
    label: "Run drill",
    what: "run a drill",
    run: (bearer, { reason }) =>
      orBusy(page.send("POST", `backups/${encodeURIComponent(name)}/drill`, { body: reason ? { reason } : null, bearer })),
    done: (answer) => {
      if (answer.busy || answer.result === null) {
        drilling.set(name, { id: entry.item.last_drill?.id ?? null, until: serverClock.now() + DRILL_WAIT });
        page.toast(answer.busy ? `A drill of “${name}” is already running: its result shows here when it ends.`
          : `The drill of “${name}” takes a while: its RTO and RPO show here when it ends.`);
        refresh();
      } else {
        const d = answer.result;
        page.toast(d.ok ? `Drill of “${name}” passed: RTO ${duration(d.rto_seconds)}, RPO ${duration(d.rpo_seconds)}.`
          : `Drill of “${name}” failed: ${d.error ?? "a check failed"}.`, d.ok ? "pass" : "fail");
      }
      page.reload();
    },
  });
}

export const backupsPanel = {
  id: "backups-panel",
  path: "backups?points=100",
  every: 15,
  kinds: ["backup.", "drill."],
  init(ctx) {
    page = ctx;
    rows = new RowSet({
      body: $("backup-rows"),
      count: $("backups-count"),
      empty: $("backups-empty"),
      filter: $("backups-filter"),
      select: $("backups-status"),
      create: createRow,
      update: updateRow,
      match: (entry, choice) => (choice === "problem" ? entry.status !== "ok" : entry.status === choice),
    });
    $("backup-rows").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const entry = button && rows.rows.get(button.closest("tr").dataset.name);
      if (!entry || button.disabled) return;
      if (button.dataset.action === "verify") verify(entry);
      else drill(entry);
    });
  },
  render,
  tick,
};
