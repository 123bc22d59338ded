// The buttress dashboard: live state from the stream, breaker actions, pipelines and jobs;
// the panels of optional capabilities (degradation, flags, HTTP clients...) in capabilities.js.
import { applyBreaker, applyBreakers, breakers, onBreakerAction, tickBreakers } from "./breakers.js";
import { capabilities } from "./capabilities.js";
import { refreshTimes, renderEvents, renderHealth, renderJobs, renderPipelines } from "./panels.js";
import { liveStream, readError } from "./stream.js";
import { BREAKER_STATES, duration, el, serverClock, setData, setText } from "./views.js";

const API = "admin/reliability"; // relative to the page, so the app works mounted under a prefix
const TOKEN_KEY = "buttress.token"; // sessionStorage only: gone with the tab, never in the URL
const $ = (id) => document.getElementById(id);

const state = {
  lastSeq: 0, // the newest event seen; a reconnection asks for what came after
  live: false,
  needsAuth: false,
  throttled: false,
  pipelinesLoaded: false,
};

// -- the token ------------------------------------------------------------------------------

const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
    updateTokenButton();
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    updateTokenButton();
  },
};

/** "Forget token" while one is kept, "Sign in" while reads are refused, else nothing. */
function updateTokenButton() {
  const button = $("token-button");
  const kept = Boolean(token.get());
  button.hidden = !kept && !state.needsAuth;
  setText(button, kept ? "Forget token" : "Sign in");
}

function authHeaders(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

/** Words for an HTTP error of the API; `needsToken` when another token could help. */
function explain(error, what) {
  const detail = error.body?.detail ? ` (${error.body.detail})` : "";
  switch (error.status) {
    case 401:
      return { text: "This token is not valid. Enter a valid token.", needsToken: true };
    case 403:
      return { text: `This token's role cannot ${what}: it needs an operator token.`, needsToken: true };
    case 429:
      return { text: `Too many failed attempts from this address. Try again in ${duration(error.retryAfter ?? 60)}.` };
    case 404:
      return { text: `Not found${detail}.` };
    default:
      return { text: `The server answered ${error.status}${detail}.` };
  }
}

// -- the dialog (tokens, confirmations) -----------------------------------------------------

const dialog = {
  node: $("token-dialog"),
  pending: null,

  /**
   * Open it; `submit({token, reason})` resolves to null (done) or {text, needsToken}.
   * `reason`: false, true (optional) or "required"; `fields`: more inputs shown above the
   * token; `cancelled()` runs when the dialog closes without a successful submit.
   */
  open({ title, text, needToken, reason = false, fields = [], label = "Continue", danger = false, error = null, submit, cancelled = null }) {
    this.settle(false);
    setText($("dialog-title"), title);
    setText($("dialog-text"), text);
    $("dialog-fields").replaceChildren(...fields);
    $("token-field").hidden = !needToken;
    $("token-input").required = needToken;
    $("token-input").value = "";
    $("reason-field").hidden = !reason;
    $("reason-input").value = "";
    $("reason-input").required = reason === "required";
    setText($("reason-hint"), reason === "required" ? "(required, written to the audit log)" : "(optional, written to the audit log)");
    this.cancelled = cancelled;
    $("dialog-submit").textContent = label;
    $("dialog-submit").className = danger ? "danger" : "primary";
    this.showError(error);
    this.pending = submit;
    if (!this.node.open) this.node.showModal();
    const first = $("dialog-fields").querySelector("input, select");
    (first ?? (needToken ? $("token-input") : $("dialog-submit"))).focus();
  },

  /** Forget the current request; run its `cancelled` unless it succeeded. */
  settle(succeeded) {
    const cancelled = this.cancelled;
    this.cancelled = null;
    if (!succeeded) cancelled?.();
  },

  showError(error) {
    $("dialog-error").hidden = !error;
    setText($("dialog-error"), error?.text ?? "");
    if (error?.needsToken) {
      $("token-field").hidden = false;
      $("token-input").required = true;
      $("token-input").value = "";
      $("token-input").focus();
    }
  },

  async submitted() {
    const values = { token: $("token-field").hidden ? "" : $("token-input").value.trim(), reason: $("reason-input").value.trim() };
    $("dialog-submit").disabled = true;
    try {
      const error = await this.pending(values);
      if (error) this.showError(error);
      else {
        this.settle(true);
        this.node.close();
      }
    } finally {
      $("dialog-submit").disabled = false;
    }
  },
};

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  dialog.submitted();
});
$("dialog-cancel").addEventListener("click", () => dialog.node.close());
dialog.node.addEventListener("close", () => dialog.settle(false));

function askReadToken(error) {
  dialog.open({
    title: "Sign in to view",
    text: "This dashboard needs a token to read: a viewer or an operator token.",
    needToken: true,
    label: "View dashboard",
    error: error && token.get() ? explain(error, "read") : null,
    submit: async ({ token: value }) => {
      token.set(value);
      stream.restart();
      return null;
    },
  });
}

// -- breaker actions ------------------------------------------------------------------------

const ACTIONS = {
  reset: {
    verb: "reset",
    title: (name) => `Reset breaker “${name}”?`,
    text: "It closes and lets calls through again; its window is cleared.",
    label: "Reset breaker",
  },
  open: {
    verb: "open",
    title: (name) => `Open breaker “${name}”?`,
    text: "It rejects every call until someone resets it.",
    label: "Open breaker",
    danger: true,
  },
};

/** A request to the admin API (`path` relative to it); the JSON answer, or an HttpError. */
async function send(method, path, { body = null, bearer = token.get() } = {}) {
  const headers = {};
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== null) headers["Content-Type"] = "application/json";
  const init = { method, headers, body: body === null ? undefined : JSON.stringify(body), cache: "no-store" };
  const response = await fetch(`${API}/${path}`, init);
  if (!response.ok) throw await readError(response);
  return response.json();
}

/**
 * A change through the dialog, as the breaker actions do: it asks for a token when none is
 * kept (or when the kept one is refused), keeps a token that worked, and explains refusals.
 * `run(bearer, {reason})` makes the request; `done(result)` shows its outcome; `what` ends
 * "This token's role cannot …".
 */
function operate({ title, text, label, danger = false, reason = true, fields = [], what, run, done, cancelled = null }) {
  dialog.open({
    title,
    text,
    needToken: !token.get(),
    reason,
    fields,
    label,
    danger,
    cancelled,
    submit: async ({ token: entered, reason: why }) => {
      try {
        const result = await run(entered || token.get(), { reason: why });
        if (entered) token.set(entered);
        done?.(result);
        return null;
      } catch (error) {
        if (error.invalid) return { text: error.message }; // a field of the dialog is wrong
        if (!error.status) return { text: `The server did not answer: ${error.message}` };
        if (error.status === 401 && !entered) token.clear();
        return explain(error, what);
      }
    },
  });
}

function act(name, action) {
  const spec = ACTIONS[action];
  operate({
    title: spec.title(name),
    text: spec.text,
    label: spec.label,
    danger: spec.danger,
    what: `${spec.verb} a breaker`,
    run: (bearer, { reason }) =>
      send("POST", `circuit-breakers/${encodeURIComponent(name)}/${action}`, { body: reason ? { reason } : null, bearer }),
    done: (result) => {
      applyBreaker(result.after);
      toast(`Breaker “${name}” ${spec.verb === "reset" ? "reset" : "opened"}: now ${BREAKER_STATES[result.after.state]?.label ?? result.after.state}.`, "pass");
    },
  });
}

function toast(text, tone = "info") {
  const node = el("div", { class: "toast", "data-tone": tone, role: tone === "fail" ? "alert" : "status" }, text);
  $("toasts").append(node);
  setTimeout(() => node.remove(), 6000);
}

// -- pipelines and jobs (plain reads) --------------------------------------------------------

async function getJSON(path) {
  const response = await fetch(`${API}/${path}`, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) throw await readError(response);
  return response.json();
}

capabilities.use({ getJSON, send, operate, toast, explain });

async function loadPipelines() {
  try {
    const { pipelines } = await getJSON("pipelines");
    renderPipelines(pipelines, breakers);
    state.pipelinesLoaded = true;
  } catch (error) {
    setText($("pipelines-empty"), error.status ? explain(error, "read").text : "The server did not answer.");
  }
}

let jobsTimer = null;
async function loadJobs() {
  clearTimeout(jobsTimer);
  try {
    renderJobs(await getJSON("jobs"));
  } catch (error) {
    if (error.status === 404) {
      renderJobs({ missing: true }); // no scheduler in this app: stop asking
      return;
    }
    renderJobs({ error: error.status ? explain(error, "read").text : "The server did not answer." });
    if ([401, 403, 429].includes(error.status)) return; // failed authentications are counted
  }
  jobsTimer = setTimeout(loadJobs, 5000);
}

// -- the live stream -------------------------------------------------------------------------

function onEvent({ event, data }) {
  const payload = JSON.parse(data);
  if (event === "snapshot") {
    if (typeof payload.now === "number") serverClock.offset = payload.now - Date.now() / 1000;
    renderHealth(payload.health);
    applyBreakers(payload.breakers);
  } else if (event === "events") {
    if (payload.reset) {
      // a new stream (or the server restarted): these are the recent events, numbered afresh
      state.lastSeq = 0;
      $("events").replaceChildren();
    }
    const fresh = payload.events.filter((ev) => ev.seq > state.lastSeq);
    if (fresh.length) {
      state.lastSeq = fresh.at(-1).seq;
      renderEvents(fresh, $("events"));
      capabilities.onEvents(fresh);
    }
  }
}

function onState(name, detail, error) {
  const node = $("connection");
  const labels = {
    connecting: "connecting…",
    live: "live",
    waiting: `reconnecting in ${duration(detail)}`,
    auth: "needs a token",
  };
  setData(node, "state", name);
  setText(node.querySelector(".label"), labels[name] ?? name);
  node.title = error?.status ? explain(error, "read").text : (error?.message ?? "");
  if (name === "waiting") {
    if (error?.status === 429 && !state.throttled) toast(explain(error, "read").text, "fail");
    state.throttled = error?.status === 429;
  }
  state.needsAuth = name === "auth";
  if (name === "auth") {
    clearTimeout(jobsTimer); // a refused token must not keep failing
    capabilities.pause();
  }
  updateTokenButton();
  if (name === "live" && !state.live) {
    if (!state.pipelinesLoaded) loadPipelines();
    loadJobs();
    capabilities.load();
  }
  state.live = name === "live";
  if (name === "auth") askReadToken(detail);
}

const stream = liveStream({
  url: () => `${API}/stream${state.lastSeq ? `?after=${state.lastSeq}` : ""}`,
  token: token.get,
  onEvent,
  onState,
});

updateTokenButton();
$("token-button").addEventListener("click", () => {
  if (!token.get()) {
    askReadToken();
    return;
  }
  token.clear();
  toast("Token forgotten.");
  stream.restart();
});
onBreakerAction(act);
setInterval(() => {
  tickBreakers();
  refreshTimes();
  capabilities.tick();
}, 1000);
