// Tables of many rows, updated in place (a row being used keeps its focus and its input),
// in the order of the data, filtered by a search box and a select, with a "shown of total".
import { setText } from "./views.js";

export class RowSet {
  /**
   * `body`: the tbody; `count`: where "n" or "n of m" goes; `filter`, `select`: the inputs;
   * `create(key, item)` -> {row, ...parts}; `update(entry, item)`; `match(entry, choice)`:
   * whether the row passes the select (the search box matches the key and `entry.text`).
   */
  constructor({ body, count, empty, filter, select, create, update, match }) {
    Object.assign(this, { body, count, empty, filterInput: filter, select, create, update, match });
    this.rows = new Map();
    filter?.addEventListener("input", () => this.filter());
    select?.addEventListener("change", () => this.filter());
  }

  /** Show `items` (each named by `key(item)`): new rows made, gone rows removed. */
  apply(items, key) {
    const seen = new Set();
    let previous = null;
    for (const item of items) {
      const name = key(item);
      seen.add(name);
      let entry = this.rows.get(name);
      if (!entry) {
        entry = { key: name, ...this.create(name, item) };
        entry.row.dataset.name = name;
        this.rows.set(name, entry);
      }
      entry.item = item;
      this.update(entry, item);
      const wanted = previous ? previous.nextSibling : this.body.firstChild;
      if (wanted !== entry.row) this.body.insertBefore(entry.row, wanted);
      previous = entry.row;
    }
    for (const [name, entry] of this.rows) {
      if (!seen.has(name)) {
        entry.row.remove();
        this.rows.delete(name);
      }
    }
    if (this.empty) this.empty.hidden = this.rows.size > 0;
    this.filter();
  }

  filter() {
    const text = (this.filterInput?.value ?? "").trim().toLowerCase();
    const choice = this.select?.value ?? "all";
    let shown = 0;
    for (const entry of this.rows.values()) {
      const haystack = `${entry.key} ${entry.text ?? ""}`.toLowerCase();
      const visible = haystack.includes(text) && (choice === "all" || this.match(entry, choice));
      if (entry.row.hidden === visible) entry.row.hidden = !visible;
      if (visible) shown += 1;
    }
    const total = this.rows.size;
    if (this.count) setText(this.count, shown === total ? `${total}` : `${shown} of ${total}`);
  }
}
