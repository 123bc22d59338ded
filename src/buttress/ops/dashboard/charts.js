// Inline SVG charts of the capability panels. They stretch to their box (viewBox without
// aspect ratio, strokes not scaled); their labels are HTML around them, so text never stretches.
import { clock, duration, el } from "./views.js";

// The SVG namespace, as HTML parsing gives it (no URL written here: the page names no host).
const NS = (() => {
  const template = document.createElement("template");
  template.innerHTML = "<svg></svg>";
  return template.content.firstChild.namespaceURI;
})();

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function titled(node, text) {
  node.append(svg("title", {}, text));
  return node;
}

/**
 * A step chart of a level over time: one lane per level (lowest at the bottom), the periods
 * above the lowest shaded by level. `draw({changes, current, now, span})`: `changes` oldest
 * first, each {time, old, new, reason, actor}; `current` the level now; `span` seconds shown.
 */
export class LevelTimeline {
  constructor(levels, lane = 16) {
    this.levels = levels;
    this.lane = lane;
    this.height = levels.length * lane;
    this.title = svg("title");
    this.areas = svg("g");
    this.line = svg("polyline", { class: "timeline-line" });
    const grid = svg("g", { class: "timeline-grid" });
    for (let i = 1; i < levels.length; i++) {
      grid.append(svg("line", { x1: 0, x2: 1000, y1: i * lane, y2: i * lane }));
    }
    this.svg = svg(
      "svg",
      { class: "timeline-chart", viewBox: `0 0 1000 ${this.height}`, preserveAspectRatio: "none", height: this.height, role: "img" },
      this.title, grid, this.areas, this.line,
    );
    this.ticks = [el("span"), el("span"), el("span", { text: "now" })];
    this.node = el(
      "div",
      { class: "timeline" },
      el("div", { class: "timeline-y", "aria-hidden": "true" }, ...[...levels].reverse().map((name) => el("span", { text: name }))),
      el("div", { class: "timeline-plot" }, this.svg),
      el("span"),
      el("div", { class: "timeline-x", "aria-hidden": "true" }, ...this.ticks),
    );
  }

  y(level) {
    const index = Math.max(0, this.levels.indexOf(level));
    return (this.levels.length - 0.5 - index) * this.lane;
  }

  /** The periods at one level, oldest first: {level, from, to, reason, actor}. */
  static periods(changes, current, now) {
    const periods = [];
    let level = changes.length ? changes[0].old : current;
    let from = -Infinity;
    let why = {};
    for (const change of changes) {
      periods.push({ level, from, to: change.time, ...why });
      level = change.new;
      from = change.time;
      why = { reason: change.reason ?? change.output, actor: change.actor };
    }
    periods.push({ level: current, from, to: now, ...why });
    return periods;
  }

  draw({ changes, current, now, span }) {
    const start = now - span;
    const x = (t) => (((t - start) / span) * 1000).toFixed(1);
    const shown = LevelTimeline.periods(changes, current, now)
      .map((p) => ({ ...p, from: Math.max(p.from, start), to: Math.min(p.to, now) }))
      .filter((p) => p.to > p.from);
    const points = [];
    const areas = [];
    for (const period of shown) {
      const y = this.y(period.level).toFixed(1);
      points.push(`${x(period.from)},${y}`, `${x(period.to)},${y}`);
      const since = Number.isFinite(period.from) && period.from > start ? clock(period.from) : `before ${clock(start)}`;
      const words = `${period.level} from ${since} to ${period.to >= now ? "now" : clock(period.to)}` +
        (period.reason ? ` · ${period.reason}` : "") + (period.actor ? ` (by ${period.actor})` : "");
      const width = Math.max(1, Number(x(period.to)) - Number(x(period.from))).toFixed(1);
      const top = this.levels.indexOf(period.level) > 0 ? Number(y) - this.lane / 2 : this.height;
      areas.push(
        titled(svg("rect", { class: `timeline-area level-${period.level}`, x: x(period.from), y: top, width, height: this.height - top }), words),
        titled(svg("rect", { class: "timeline-hit", x: x(period.from), y: 0, width, height: this.height }), words),
      );
    }
    this.areas.replaceChildren(...areas);
    this.line.setAttribute("points", points.join(" "));
    setTick(this.ticks[0], clock(start));
    setTick(this.ticks[1], clock(start + span / 2));
    const moves = changes.filter((c) => c.time >= start).length;
    this.title.textContent = `Degradation level over the last ${duration(span)}: now ${current}; ` +
      `${moves} change${moves === 1 ? "" : "s"}`;
  }
}

function setTick(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Stacked bars, one per time bucket: `draw({buckets, keys, series, bucket, label})` where each
 * bucket is {start, total, [series]: {key: n}}, `keys` the stack order (bottom first) and
 * `classOf(key)` the class that colours a key. The legend (HTML) names every key with its total.
 */
export class StackedBars {
  constructor(classOf, height = 90) {
    this.classOf = classOf;
    this.height = height;
    this.title = svg("title");
    this.bars = svg("g");
    this.svg = svg(
      "svg",
      { class: "bars-chart", viewBox: `0 0 1000 ${height}`, preserveAspectRatio: "none", height, role: "img" },
      this.title, svg("line", { class: "bars-base", x1: 0, x2: 1000, y1: height, y2: height }), this.bars,
    );
    this.peak = el("span");
    this.ticks = [el("span"), el("span"), el("span", { text: "now" })];
    this.legend = el("ul", { class: "legend" });
    this.node = el(
      "div",
      { class: "bars" },
      el("div", { class: "bars-y", "aria-hidden": "true" }, this.peak, el("span", { text: "0" })),
      el("div", { class: "timeline-plot" }, this.svg),
      el("span"),
      el("div", { class: "timeline-x", "aria-hidden": "true" }, ...this.ticks),
      el("span"),
      this.legend,
    );
  }

  draw({ buckets, keys, series, bucket, label }) {
    const peak = Math.max(1, ...buckets.map((b) => b.total));
    const width = 1000 / Math.max(1, buckets.length);
    const gap = Math.min(2, width * 0.2);
    const totals = Object.fromEntries(keys.map((key) => [key, 0]));
    const groups = buckets.map((b, i) => {
      const counts = b[series] ?? {};
      const end = b.start + bucket;
      const words = `${clock(b.start)}–${clock(end)}: ${b.total} ${label}` +
        (b.total ? ` (${keys.filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`).join(", ")})` : "");
      const group = svg("g", {}, svg("title", {}, words));
      let top = this.height;
      for (const key of keys) {
        const n = counts[key] ?? 0;
        if (!n) continue;
        totals[key] += n;
        const h = (n / peak) * (this.height - 4);
        top -= h;
        group.append(svg("rect", { class: `bar ${this.classOf(key)}`, x: (i * width + gap / 2).toFixed(1), y: top.toFixed(1), width: (width - gap).toFixed(1), height: h.toFixed(1) }));
      }
      group.append(svg("rect", { class: "timeline-hit", x: (i * width).toFixed(1), y: 0, width: width.toFixed(1), height: this.height }));
      return group;
    });
    this.bars.replaceChildren(...groups);
    const first = buckets[0]?.start;
    if (first !== undefined) {
      setTick(this.ticks[0], clock(first));
      setTick(this.ticks[1], clock(first + (buckets.length * bucket) / 2));
    }
    setTick(this.peak, String(peak));
    const sum = buckets.reduce((n, b) => n + b.total, 0);
    this.title.textContent = `${sum} ${label} in ${buckets.length} buckets of ${duration(bucket)}`;
    this.legend.replaceChildren(...keys.map((key) =>
      el("li", {}, el("span", { class: `swatch ${this.classOf(key)}`, "aria-hidden": "true" }), el("span", { text: `${key} ${totals[key]}` }))));
  }
}
