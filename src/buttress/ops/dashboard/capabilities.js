// The panels of optional capabilities (degradation, feature flags, HTTP clients, backups, and
// what comes later): each reads one admin endpoint on its own pace and again when the live stream
// brings an event about it. A panel stays hidden while its endpoint answers 404 (or its
// `render` returns false: nothing to show, e.g. no HTTP client yet): the capability is not
// configured in this app, and the page works without it.
import { backupsPanel } from "./recovery.js";
import { dlqPanel } from "./deadletters.js";
import { degradationPanel } from "./degrade.js";
import { flagsPanel } from "./featureflags.js";
import { httpPanel } from "./httpclients.js";
import { limitsPanel } from "./limits.js";
import { setText } from "./views.js";

const PANELS = [degradationPanel, flagsPanel, dlqPanel, httpPanel, limitsPanel, backupsPanel];
const STOP = [401, 403, 429]; // a refused token: wait until the stream is live again

/**
 * One panel's loading. A panel spec: `id` (its section's id; `<id>-error` shows failures),
 * `path` (under admin/reliability/), `every` (seconds between reads), `recheck` (seconds
 * between reads while it answers 404; none: stop), `kinds` (event kinds that make it read at
 * once, by prefix), `init(ctx)`, `render(data)` (false: nothing configured, hide the panel),
 * `tick()` (once a second while shown).
 */
class Loader {
  constructor(spec) {
    this.spec = spec;
    this.timer = null;
    this.serial = 0;
    this.shown = false;
    this.active = false;
  }

  get section() {
    return document.getElementById(this.spec.id);
  }

  schedule(seconds) {
    clearTimeout(this.timer);
    this.timer = seconds ? setTimeout(() => this.load(), seconds * 1000) : null;
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.serial += 1; // an answer still on its way is dropped
    this.active = false;
  }

  async load() {
    clearTimeout(this.timer);
    this.active = true;
    const serial = ++this.serial;
    try {
      const data = await api.getJSON(this.spec.path);
      if (serial !== this.serial) return;
      this.showError(null);
      const configured = this.spec.render(data) !== false;
      this.show(configured);
      this.schedule(configured ? this.spec.every : this.spec.recheck);
    } catch (error) {
      if (serial !== this.serial) return;
      if (error.status === 404) {
        this.show(false); // not configured in this app
        this.schedule(this.spec.recheck);
        return;
      }
      this.show(true); // configured, but failing: say so
      this.showError(error.status ? api.explain(error, "read this").text : "The server did not answer.");
      if (STOP.includes(error.status)) this.active = false;
      else this.schedule(this.spec.every * 2);
    }
  }

  show(visible) {
    this.shown = visible;
    const section = this.section;
    if (section && section.hidden === visible) section.hidden = !visible;
  }

  showError(text) {
    const node = document.getElementById(`${this.spec.id}-error`);
    if (!node) return;
    node.hidden = !text;
    setText(node, text ?? "");
  }
}

let api = null;
const loaders = PANELS.map((spec) => new Loader(spec));
const pending = new Set();
let soon = null;

export const capabilities = {
  /** Give the panels the page's API: getJSON, send, operate, toast, explain. */
  use(pageApi) {
    api = pageApi;
    for (const loader of loaders) loader.spec.init?.({ ...pageApi, reload: () => loader.load() });
  },

  /** Read every panel now (the stream went live, perhaps with another token). */
  load() {
    for (const loader of loaders) loader.load();
  },

  /** Stop reading (the token was refused); `load()` starts again. */
  pause() {
    for (const loader of loaders) loader.stop();
  },

  /** Events from the stream: read again the panels they concern (at most once per burst). */
  onEvents(events) {
    for (const loader of loaders) {
      const { kinds = [] } = loader.spec;
      if (loader.active && kinds.some((kind) => events.some((ev) => ev.kind.startsWith(kind)))) pending.add(loader);
    }
    if (!pending.size || soon) return;
    soon = setTimeout(() => {
      soon = null;
      for (const loader of pending) loader.load();
      pending.clear();
    }, 150);
  },

  /** Once a second: let the shown panels move their clocks and charts. */
  tick() {
    for (const loader of loaders) if (loader.shown) loader.spec.tick?.();
  },
};
