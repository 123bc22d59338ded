// Server-sent events read with fetch(): EventSource cannot send an Authorization header.

/** An incremental parser of the text/event-stream format (WHATWG HTML, "event stream"). */
export class EventStreamParser {
  constructor(onEvent) {
    this.onEvent = onEvent; // ({event, data, id}) => void
    this.buffer = "";
    this.lastEventId = "";
    this.retry = null;
    this.afterCR = false;
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  /** Feed decoded text; complete lines are handled, a partial last line waits. */
  push(text) {
    // "\r\n" may be split across chunks: a "\n" right after a "\r" ends no second line.
    if (this.afterCR && text.startsWith("\n")) text = text.slice(1);
    this.afterCR = text.endsWith("\r");
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }

  dispatch() {
    if (this.id !== null) this.lastEventId = this.id;
    if (this.data.length) {
      this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.lastEventId });
    }
    this.reset();
  }
}

/** Thrown for an HTTP answer that is not a stream; `status` and `body` say why. */
export class HttpError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export async function readError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const retryAfter = Number(response.headers.get("Retry-After")) || null;
  return new HttpError(response.status, body, retryAfter);
}

/**
 * Keep a stream open: connect, parse, and reconnect with exponential backoff and jitter.
 * `url()` gives the URL for each attempt (so it can carry `after`), `token()` the bearer token.
 * Callbacks: onEvent(ev), onState(state, detail, error) with state "connecting", "live",
 * "waiting" (detail: seconds; error: why, if the attempt failed) or "auth" (detail: the
 * HttpError; the loop stops until `restart()`).
 */
export function liveStream({ url, token, onEvent, onState }) {
  let controller = null;
  let running = false;
  let stopped = false;
  let now = false; // reconnect at once (restart) rather than after a backoff
  let wake = () => {};
  let failures = 0;

  const sleep = (seconds) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function connect() {
    controller = new AbortController();
    const headers = { Accept: "text/event-stream" };
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    onState("connecting");
    const response = await fetch(url(), { headers, signal: controller.signal, cache: "no-store" });
    if (!response.ok) throw await readError(response);
    const parser = new EventStreamParser((ev) => {
      failures = 0;
      onEvent(ev);
    });
    onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
    return parser.retry;
  }

  async function loop() {
    while (!stopped) {
      let delay;
      let failure = null;
      now = false;
      try {
        const retry = await connect();
        delay = (retry ?? 2000) / 1000; // the server ended the stream: come back soon
      } catch (error) {
        if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
          onState("auth", error);
          return;
        }
        failures += 1;
        failure = error;
        const backoff = Math.min(30, 2 ** Math.min(failures, 5));
        delay = error.retryAfter ?? backoff * (0.5 + Math.random() / 2);
      }
      if (stopped) return;
      if (now) continue;
      onState("waiting", delay, failure);
      await sleep(delay);
    }
  }

  function start() {
    if (running) return;
    running = true;
    stopped = false;
    loop().finally(() => {
      running = false;
    });
  }

  start();
  return {
    /** Reconnect now (after a new token, or when the user asks). */
    restart() {
      failures = 0;
      now = running;
      controller?.abort();
      wake();
      start();
    },
    stop() {
      stopped = true;
      controller?.abort();
      wake();
    },
  };
}
