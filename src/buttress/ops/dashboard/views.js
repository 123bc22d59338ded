// Small rendering helpers: elements, status marks (shape + label, not colour alone),
// number and time formats, and the sparkline.

/** An element: el("td", {class: "num", title: "..."}, child, "text", ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** Set text only when it changed (keeps a 50-row table cheap to refresh each second). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function setData(node, key, value) {
  if (node.dataset[key] !== value) node.dataset[key] = value;
}

// Each status has a shape as well as a colour, and always a word.
export const BREAKER_STATES = {
  closed: { label: "closed", tone: "pass", shape: "circle" },
  half_open: { label: "half-open", tone: "warn", shape: "triangle" },
  open: { label: "open", tone: "fail", shape: "square" },
  forced_open: { label: "forced open", tone: "fail", shape: "hatched" },
  disabled: { label: "disabled", tone: "off", shape: "ring" },
};
export const CHECK_STATES = {
  pass: { label: "pass", tone: "pass", shape: "circle" },
  warn: { label: "warn", tone: "warn", shape: "triangle" },
  fail: { label: "fail", tone: "fail", shape: "square" },
  unknown: { label: "not run", tone: "off", shape: "ring" },
};
export const JOB_OUTCOMES = {
  ok: { label: "ok", tone: "pass", shape: "circle" },
  error: { label: "error", tone: "fail", shape: "square" },
  skipped: { label: "skipped", tone: "warn", shape: "triangle" },
  running: { label: "running", tone: "info", shape: "ring" },
  none: { label: "never", tone: "off", shape: "ring" },
};

/** A status mark: shape, colour and label. `update(mark, spec)` changes it in place. */
export function mark(spec) {
  const node = el("span", { class: "mark" }, el("span", { class: "shape", "aria-hidden": "true" }), el("span", { class: "word" }));
  updateMark(node, spec);
  return node;
}

export function updateMark(node, spec) {
  setData(node, "tone", spec.tone);
  setData(node, "shape", spec.shape);
  setText(node.lastChild, spec.label);
}

/** The server's clock as the browser sees it (set from each snapshot's `now`). */
export const serverClock = {
  offset: 0,
  now() {
    return Date.now() / 1000 + this.offset;
  },
};

const numberFormat = new Intl.NumberFormat();
export const count = (n) => (typeof n === "number" ? numberFormat.format(n) : "–");

export function percent(rate) {
  if (typeof rate !== "number") return "–";
  const value = rate * 100;
  return `${value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1)}%`;
}

/** A duration in seconds, short: "850 ms", "12 s", "4 m 05 s", "3 h 20 m", "2 d 4 h". */
export function duration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
  if (seconds < 0.001 && seconds > 0) return "<1 ms";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1).replace(/\.0$/, "") : Math.round(seconds)} s`;
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A moment (epoch seconds, or an ISO string) as epoch seconds, or null. */
export function epoch(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string") {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms / 1000;
  }
  return null;
}

export function clock(seconds) {
  if (seconds === null) return "–";
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

/** A measured value with its unit: "12 ms", "43.5 percent" → "43.5 %". */
export function observed(value, unit) {
  if (value === null || value === undefined) return "";
  const shown = typeof value === "number" ? Number(value.toPrecision(4)).toLocaleString() : String(value);
  if (!unit) return shown;
  return `${shown} ${unit === "percent" ? "%" : unit}`;
}

/**
 * A sparkline of a breaker's failure rate over the last `size` samples ({rate, state}), with
 * the periods it was not closed shaded by state and the opening threshold dashed.
 */
export class Sparkline {
  constructor(size = 60, width = 120, height = 26) {
    this.size = size;
    this.width = width;
    this.height = height;
    // Parsed as HTML, <svg> takes the SVG namespace by itself.
    const template = document.createElement("template");
    template.innerHTML =
      `<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">` +
      `<title></title><g></g><line class="spark-base"></line><line class="spark-threshold"></line>` +
      `<polyline class="spark-line"></polyline><circle class="spark-dot" r="0"></circle></svg>`;
    const svg = template.content.firstChild;
    [this.title, this.bands, this.base, this.threshold, this.line, this.dot] = svg.children;
    const y0 = this.y(0);
    for (const [k, v] of [["x1", 0], ["x2", width], ["y1", y0], ["y2", y0]]) this.base.setAttribute(k, v);
    this.svg = svg;
  }

  y(rate) {
    const pad = 3;
    return (this.height - pad - Math.max(0, Math.min(1, rate)) * (this.height - 2 * pad)).toFixed(1);
  }

  draw(samples, threshold) {
    const step = this.width / (this.size - 1);
    const x0 = this.width - (samples.length - 1) * step;
    const points = samples.map((s, i) => `${(x0 + i * step).toFixed(1)},${this.y(s.rate)}`);
    this.line.setAttribute("points", points.join(" "));
    const last = samples.at(-1);
    if (last) {
      this.dot.setAttribute("r", "2");
      this.dot.setAttribute("cx", (x0 + (samples.length - 1) * step).toFixed(1));
      this.dot.setAttribute("cy", this.y(last.rate));
    }
    const ty = this.y(threshold ?? 1);
    for (const [k, v] of [["x1", 0], ["x2", this.width], ["y1", ty], ["y2", ty]]) this.threshold.setAttribute(k, v);
    // Shade each run of samples in one non-closed state.
    const bands = [];
    let start = 0;
    for (let i = 1; i <= samples.length; i++) {
      if (i === samples.length || samples[i].state !== samples[start].state) {
        if (samples[start].state !== "closed") bands.push([start, i, samples[start].state]);
        start = i;
      }
    }
    while (this.bands.childNodes.length > bands.length) this.bands.lastChild.remove();
    while (this.bands.childNodes.length < bands.length) this.bands.append(document.createElementNS(this.svg.namespaceURI, "rect"));
    bands.forEach(([from, to, state], i) => {
      const rect = this.bands.childNodes[i];
      const left = Math.max(0, x0 + from * step - step / 2);
      rect.setAttribute("x", left.toFixed(1));
      rect.setAttribute("y", "0");
      rect.setAttribute("width", Math.max(step, (to - from) * step).toFixed(1));
      rect.setAttribute("height", this.height);
      rect.setAttribute("class", `band band-${state}`);
    });
    const now = last ? percent(last.rate) : "–";
    const notClosed = samples.filter((s) => s.state !== "closed").length;
    this.title.textContent =
      `Failure rate over the last ${samples.length} s, now ${now}` +
      (notClosed ? `; not closed for ${notClosed} s` : "");
  }
}
