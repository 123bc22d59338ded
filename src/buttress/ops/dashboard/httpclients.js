// The HTTP clients panel: one row per host of each client, with requests, the success rate and
// latency percentiles over its recent window, its breaker and its graded status.
import { RowSet } from "./rows.js";
import {
  BREAKER_STATES, CHECK_STATES, count, duration, el, mark, percent, setData, setText, updateMark,
} from "./views.js";

const $ = (id) => document.getElementById(id);
const NO_BREAKER = { label: "none", tone: "off", shape: "ring" };

let rows = null;

function createRow() {
  const parts = {
    mark: mark(CHECK_STATES.unknown),
    host: el("span", { class: "cap-name" }),
    reason: el("div", { class: "cap-detail" }),
    client: el("td", { class: "muted" }),
    requests: el("td", { class: "num" }),
    rate: el("span", { class: "rate" }),
    fill: el("span", { class: "fill" }),
    p50: el("td", { class: "num" }),
    p90: el("td", { class: "num" }),
    p99: el("td", { class: "num" }),
    breaker: mark(NO_BREAKER),
    retries: el("td", { class: "num" }),
  };
  const row = el("tr", {},
    el("td", { class: "state" }, parts.mark),
    el("th", { scope: "row", class: "name wide" }, parts.host, parts.reason),
    parts.client,
    parts.requests,
    el("td", { class: "num" }, el("span", { class: "rate-cell" },
      el("span", { class: "meter", "aria-hidden": "true" }, parts.fill), parts.rate)),
    parts.p50,
    parts.p90,
    parts.p99,
    el("td", { class: "state" }, parts.breaker),
    parts.retries);
  return { row, ...parts };
}

function updateRow(entry, host) {
  updateMark(entry.mark, CHECK_STATES[host.status] ?? CHECK_STATES.unknown);
  setData(entry.row, "status", host.status);
  setText(entry.host, host.host);
  entry.host.title = host.host;
  setText(entry.reason, host.reason);
  entry.reason.title = host.reason;
  entry.text = host.client;
  setText(entry.client, host.client);
  setText(entry.requests, count(host.requests));
  entry.requests.title = Object.entries(host.outcomes ?? {}).filter(([, n]) => n).map(([k, n]) => `${k}: ${count(n)}`).join("\n");
  const rate = host.success_rate;
  setText(entry.rate, percent(rate));
  entry.rate.title = `over the last ${count(host.window_requests)} requests`;
  entry.fill.style.width = `${typeof rate === "number" ? rate * 100 : 0}%`;
  setData(entry.fill, "over", String(host.status === "fail"));
  setText(entry.p50, duration(host.latency_p50));
  setText(entry.p90, duration(host.latency_p90));
  setText(entry.p99, duration(host.latency_p99));
  updateMark(entry.breaker, host.breaker_state ? BREAKER_STATES[host.breaker_state] ?? { label: host.breaker_state, tone: "off", shape: "ring" } : NO_BREAKER);
  setText(entry.retries, count(host.retries));
}

function render(data) {
  if (!data.clients.length) return false; // no HTTP client in this app (yet)
  const hosts = data.clients.flatMap((client) => client.hosts);
  rows.apply(hosts, (host) => `${host.client} ${host.host}`);
  const failing = hosts.filter((h) => h.status !== "pass").length;
  setText($("http-summary"), failing ? `${failing} not passing` : "");
  return true;
}

export const httpPanel = {
  id: "http-panel",
  path: "http-clients",
  every: 5,
  recheck: 30, // clients are often created after the app: look again now and then
  init() {
    rows = new RowSet({
      body: $("http-rows"),
      count: $("http-count"),
      empty: $("http-empty"),
      filter: $("http-filter"),
      select: $("http-status"),
      create: createRow,
      update: updateRow,
      match: (entry, choice) => (choice === "problem" ? entry.item.status !== "pass" : entry.item.status === choice),
    });
  },
  render,
};
