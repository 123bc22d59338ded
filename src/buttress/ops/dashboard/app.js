// The buttress dashboard: live state from the stream, breaker actions, pipelines and jobs.
import { applyBreaker, applyBreakers, breakers, onBreakerAction, tickBreakers } from "./breakers.js";
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

  /** Open it; `submit({token, reason})` resolves to null (done) or {text, needsToken}. */
  open({ title, text, needToken, reason = false, label = "Continue", danger = false, error = null, submit }) {
    setText($("dialog-title"), title);
    setText($("dialog-text"), text);
    $("token-field").hidden = !needToken;
    $("token-input").required = needToken;
    $("token-input").value = "";
    $("reason-field").hidden = !reason;
    $("reason-input").value = "";
    $("dialog-submit").textContent = label;
    $("dialog-submit").className = danger ? "danger" : "primary";
    this.showError(error);
    this.pending = submit;
    if (!this.node.open) this.node.showModal();
    (needToken ? $("token-input") : $("dialog-submit")).focus();
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
      else this.node.close();
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

async function post(path, reason, bearer) {
  const headers = { "Content-Type": "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const body = reason ? JSON.stringify({ reason }) : "";
  const response = await fetch(`${API}/${path}`, { method: "POST", headers, body, cache: "no-store" });
  if (!response.ok) throw await readError(response);
  return response.json();
}

function act(name, action) {
  const spec = ACTIONS[action];
  dialog.open({
    title: spec.title(name),
    text: spec.text,
    needToken: !token.get(),
    reason: true,
    label: spec.label,
    danger: spec.danger,
    submit: async ({ token: entered, reason }) => {
      try {
        const result = await post(`circuit-breakers/${encodeURIComponent(name)}/${action}`, reason, entered || token.get());
        if (entered) token.set(entered);
        applyBreaker(result.after);
        toast(`Breaker “${name}” ${spec.verb === "reset" ? "reset" : "opened"}: now ${BREAKER_STATES[result.after.state]?.label ?? result.after.state}.`, "pass");
        return null;
      } catch (error) {
        if (!error.status) return { text: `The server did not answer: ${error.message}` };
        if (error.status === 401 && !entered) token.clear();
        return explain(error, `${spec.verb} a breaker`);
      }
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
  if (name === "auth") clearTimeout(jobsTimer); // a refused token must not keep failing
  updateTokenButton();
  if (name === "live" && !state.live) {
    if (!state.pipelinesLoaded) loadPipelines();
    loadJobs();
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
}, 1000);
