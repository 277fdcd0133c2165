// The range every graph and table covers: the current billing period,
// another period (`period=YYYY-MM`), or from a local date until now
// (`since=YYYY-MM-DD`). Kept in the URL.

import { h } from "./dom.js";
import { previousPeriod } from "./format.js";
import { params, update } from "./url.js";

/** The range the URL asks for, as API parameters. */
export function rangeParams() {
  const p = params();
  if (p.since) return { since: p.since };
  if (p.period) return { period: p.period };
  return {};
}

/** The range picker; `current` is the label of the period shown. */
export function rangePicker(current) {
  const p = params();
  const prev = previousPeriod(p.period || current);
  const period = h("input", {
    type: "month",
    value: p.period || current || "",
    "aria-label": "Billing period",
    onchange: (e) => update({ period: e.target.value, since: null }),
  });
  const since = h("input", {
    type: "date",
    value: p.since || "",
    "aria-label": "From this day until now",
    onchange: (e) => update({ since: e.target.value, period: null }),
  });
  return h(
    "div.range",
    { role: "group", "aria-label": "Range" },
    h("button", { type: "button", onclick: () => update({ period: null, since: null }), "aria-pressed": !p.period && !p.since }, "This period"),
    prev ? h("button", { type: "button", onclick: () => update({ period: prev, since: null }) }, `Previous (${prev})`) : null,
    h("label", {}, "Period ", period),
    h("label", {}, "Since ", since),
  );
}
