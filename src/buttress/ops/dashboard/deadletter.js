// One dead letter, opened from the DLQ panel's list: its payload, headers, error (with the
// traceback), every failed attempt and its note; retry, edit the payload, discard.
import { clock, el, mark } from "./views.js";

const $ = (id) => document.getElementById(id);
const OPEN = ["pending", "retrying", "parked"];

export const LETTER_STATES = {
  pending: { label: "pending", tone: "warn", shape: "triangle" },
  retrying: { label: "retrying", tone: "info", shape: "ring" },
  parked: { label: "parked", tone: "fail", shape: "square" },
  resolved: { label: "resolved", tone: "pass", shape: "circle" },
  discarded: { label: "discarded", tone: "off", shape: "square" },
};

let page = null;
let shown = null; // the record in view

/** The page's API (set by the DLQ panel's init). */
export function useLetterApi(api) {
  page = api;
  $("dlq-detail").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !shown) return;
    ({ close: hideLetter, retry, edit, discard })[button.dataset.action]?.(shown);
  });
}

export function selectedLetter() {
  return shown?.id ?? null;
}

export function hideLetter() {
  shown = null;
  $("dlq-detail").hidden = true;
  for (const row of $("dlq-rows").querySelectorAll("tr[data-selected='true']")) row.dataset.selected = "false";
}

function section(title, ...body) {
  return el("section", { class: "letter-part" }, el("h3", { text: title }), ...body);
}

function json(value) {
  return el("pre", { class: "payload", tabindex: "0", text: JSON.stringify(value, null, 2) ?? "null" });
}

export function showLetter(letter) {
  shown = letter;
  const open = OPEN.includes(letter.status);
  const action = (name, text, cls = "") =>
    el("button", { type: "button", class: `small ${cls}`, "data-action": name, disabled: !open && name !== "close", text });
  const headers = Object.entries(letter.headers);
  const detail = $("dlq-detail");
  detail.replaceChildren(
    el("div", { class: "letter-head" },
      mark(LETTER_STATES[letter.status] ?? { label: letter.status, tone: "off", shape: "ring" }),
      el("strong", { text: `Dead letter ${letter.id}` }),
      el("span", { class: "tag", text: letter.queue }),
      el("span", { class: "tag", text: letter.classification }),
      letter.key ? el("span", { class: "muted small", text: `key ${letter.key}` }) : null,
      el("div", { class: "spacer" }),
      action("retry", "Retry", "reset"),
      action("edit", "Edit payload…"),
      action("discard", "Discard…", "trip"),
      action("close", "Close", "ghost")),
    el("div", { class: "letter-body" },
      section("Payload", json(letter.payload)),
      el("div", {},
        section("Error",
          el("p", { class: "letter-error", text: `${letter.error.type}: ${letter.error.message}` }),
          letter.error.traceback ? el("details", {}, el("summary", { text: "Traceback" }), el("pre", { class: "payload", text: letter.error.traceback })) : null),
        section(`Attempts (${letter.attempts} of ${letter.max_attempts})`,
          el("ol", { class: "attempts" }, ...[...letter.history].reverse().map((attempt) =>
            el("li", {},
              el("time", { class: "event-time", title: new Date(attempt.at * 1000).toISOString(), text: clock(attempt.at) }),
              el("span", { class: "chip", "data-tone": "fail", text: attempt.number === 0 ? "first" : `#${attempt.number}` }),
              el("span", { class: "tag", text: attempt.classification }),
              el("span", { class: "attempt-error", title: attempt.message, text: `${attempt.error_type}: ${attempt.message}` }))))),
        headers.length ? section("Headers", el("dl", { class: "headers" }, ...headers.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]))) : null,
        letter.note ? section("Note", el("p", { text: letter.note })) : null)),
  );
  detail.hidden = false;
}

async function refresh(id) {
  try {
    const letter = await page.getJSON(`dlq/messages/${encodeURIComponent(id)}`);
    if (shown?.id === id) showLetter(letter);
  } catch {
    hideLetter(); // gone (purged) or unreadable: the list says which
  }
  page.reload();
}

function retry(letter) {
  page.operate({
    title: `Retry dead letter ${letter.id}?`,
    text: "It becomes due now: the worker delivers it to its handler on its next run.",
    label: "Retry",
    what: "retry a dead letter",
    run: (bearer, { reason }) => page.send("POST", `dlq/messages/${letter.id}/retry`, { body: reason ? { reason } : {}, bearer }),
    done: () => {
      page.toast(`Dead letter ${letter.id} is due now.`, "pass");
      refresh(letter.id);
    },
  });
}

function edit(letter) {
  const payload = el("textarea", { id: "dlq-payload-input", rows: 10, spellcheck: "false" });
  payload.value = JSON.stringify(letter.payload, null, 2);
  const again = el("input", { id: "dlq-edit-retry", type: "checkbox", checked: true });
  page.operate({
    title: `Edit the payload of dead letter ${letter.id}`,
    text: "The new payload (JSON) replaces the old one; the old one is kept in the audit log.",
    label: "Save payload",
    fields: [
      el("label", { class: "field" }, el("span", { text: "Payload (JSON)" }), payload),
      el("label", { class: "check-field" }, again, el("span", { text: " Retry it after saving" })),
    ],
    what: "edit a dead letter",
    run: (bearer, { reason }) => {
      let value;
      try {
        value = JSON.parse(payload.value);
      } catch (error) {
        throw Object.assign(new Error(`The payload is not valid JSON: ${error.message}`), { invalid: true });
      }
      const body = { payload: value, retry: again.checked, ...(reason ? { reason } : {}) };
      return page.send("POST", `dlq/messages/${letter.id}/edit`, { body, bearer });
    },
    done: () => {
      page.toast(`Dead letter ${letter.id} edited${again.checked ? " and due now" : ""}.`, "pass");
      refresh(letter.id);
    },
  });
}

function discard(letter) {
  page.operate({
    title: `Discard dead letter ${letter.id}?`,
    text: "It is given up on for good (kept until the retention ends, for the record).",
    label: "Discard",
    danger: true,
    reason: "required",
    what: "discard a dead letter",
    run: (bearer, { reason }) => page.send("POST", `dlq/messages/${letter.id}/discard`, { body: { reason }, bearer }),
    done: () => {
      page.toast(`Dead letter ${letter.id} discarded.`, "pass");
      refresh(letter.id);
    },
  });
}
