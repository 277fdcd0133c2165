// One tenant: its traffic per realm (down above zero, up below), at the
// resolution the range calls for, with its 95th so far and its commit
// drawn across; the previous period on demand; the bill so far; its plan,
// parent, ceilings and bands; its latency; and, for an admin, a change of
// plan or rate.

import { ApiError, get, send } from "../api.js";
import { colour, drawRates } from "../chart.js";
import { failure, h, table } from "../dom.js";
import { bitRate, bytes, columnRates, previousPeriod, rate, zoneName } from "../format.js";
import { tenantLatency } from "../latency.js";
import { rangeParams, rangePicker } from "../range.js";
import { params, update } from "../url.js";

/** The first charge with a percentile: what the graph's line shows. */
export function percentileLine(bill) {
  const line = bill?.lines?.find((l) => l.percentile);
  if (!line) return null;
  const f = line.percentile;
  return { bps: f.value?.rate ?? 0, below: f.billed_direction === "up", figure: f, name: line.name };
}

function shapeRows(t) {
  const rows = [];
  for (const [dir, s] of [["down", t.down], ["up", t.up]]) {
    rows.push([dir, s.rate, s.ceil, s.realms.map((r) => `${r.realm} ≤ ${r.ceil}`).join(", ") || "–"]);
  }
  return rows;
}

/** What the last change answered, shown again once the page is redrawn. */
let notice = "";

function adminForm(t, plans, onDone) {
  const message = h("p.message", { role: "status", id: "admin-message" }, notice);
  notice = "";
  const plan = h("select", { id: "plan", "aria-label": "Plan" }, plans.map((p) => h("option", { value: p, selected: p === t.plan }, p)));
  const fields = {};
  const input = (key, label, value) => {
    fields[key] = h("input", { id: key.replace(".", "-"), value: value ?? "", "aria-label": label, size: 10, placeholder: value ?? "" });
    return h("label", {}, `${label} `, fields[key]);
  };
  const run = async (what) => {
    message.textContent = "Applying…";
    try {
      const r = await what();
      notice = `${r.message} (${r.applied} kernel changes)`;
      onDone();
    } catch (e) {
      const field = e instanceof ApiError && e.problem?.field ? ` (${e.problem.field})` : "";
      message.textContent = `${e.message}${field}`;
    }
  };
  const move = h("form", { id: "move", onsubmit: (e) => (e.preventDefault(), run(() => send("POST", `tenants/${t.id}/move`, { plan: plan.value }))) }, h("label", {}, "Plan ", plan), h("button", { type: "submit" }, "Move"));
  const change = h(
    "form",
    {
      id: "change",
      onsubmit: (e) => {
        e.preventDefault();
        const body = {};
        for (const [key, el] of Object.entries(fields)) {
          const v = el.value.trim();
          if (!v || v === el.placeholder) continue;
          if (key === "commit") body.commit = v;
          else {
            const [dir, what] = key.split(".");
            body[dir] = { ...(body[dir] || {}), [what]: v };
          }
        }
        run(() => send("PATCH", `tenants/${t.id}`, body));
      },
    },
    input("down.rate", "Down rate", t.down.rate),
    input("down.ceil", "Down ceil", t.down.ceil),
    input("up.rate", "Up rate", t.up.rate),
    input("up.ceil", "Up ceil", t.up.ceil),
    input("commit", "Commit", t.commit),
    h("button", { type: "submit" }, "Change"),
  );
  return h("section.admin", {}, h("h2", {}, "Change (admin)"), move, change, message);
}

export async function tenant(main, { units, session, id }) {
  const p = params();
  const range = rangeParams();
  const [t, usage, billAnswer] = await Promise.all([
    get(`tenants/${encodeURIComponent(id)}`),
    get(`tenants/${encodeURIComponent(id)}/usage`, range),
    get(`tenants/${encodeURIComponent(id)}/bill`, { period: range.period }),
  ]);
  const zone = usage.series.range.zone;
  const series = usage.series;
  const realms = [...new Set(series.columns.map((c) => c.realm))];
  const shown = series.columns.filter((c) => !p.realm || c.realm_name === p.realm);
  const bill = billAnswer.bills[0]?.bill;
  const line = percentileLine(bill);
  const commitBps = t.commit_bps;

  main.replaceChildren(
    h("h1", {}, `${t.name} `, h("span.muted", {}, `#${t.id}`)),
    h("p.zone", {}, `Times in ${zoneName(zone)}. ${series.range.label}, ${series.resolution} buckets.`),
  );
  const realmSelect = h(
    "select",
    { "aria-label": "Realm", onchange: (e) => update({ realm: e.target.value || null }) },
    h("option", { value: "" }, "every realm"),
    [...new Set(series.columns.map((c) => c.realm_name))].map((r) => h("option", { value: r, selected: r === p.realm }, r)),
  );
  const prev = h("input", { type: "checkbox", checked: p.prev === "1", onchange: (e) => update({ prev: e.target.checked ? "1" : null }) });
  const graph = h("div.graph", {
    id: "tenant-graph",
    "aria-label": `${t.name}'s traffic: down above zero, up below`,
    dataset: { p95Bps: line ? String(line.bps) : "", commitBps: commitBps ? String(commitBps) : "" },
  });
  main.append(
    h(
      "section",
      {},
      h("h2", {}, "Traffic"),
      rangePicker(billAnswer.period.label),
      h("div.controls", {}, h("label", {}, "Realm ", realmSelect), h("label", {}, prev, " previous period")),
      graph,
      h("p.note", {}, "Export: ", h("a", { href: `/api/v1/tenants/${t.id}/graph.png?${new URLSearchParams({ ...range, ...(p.realm ? { realm: p.realm } : {}) })}` }, "PNG"), " · ", h("a", { href: `/api/v1/tenants/${t.id}/graph.svg?${new URLSearchParams({ ...range, ...(p.realm ? { realm: p.realm } : {}) })}` }, "SVG")),
    ),
  );
  const lines = [];
  if (line) lines.push({ label: `${line.name}: ${line.figure.rule.percentile ?? 95}th so far`, value: line.below ? -line.bps : line.bps, colour: "#D55E00" });
  if (commitBps) lines.push({ label: "commit", value: commitBps, colour: "#7f7f7f" });
  let overlay = [];
  if (p.prev === "1") {
    const label = previousPeriod(range.period || billAnswer.period.label);
    try {
      const old = (await get(`tenants/${encodeURIComponent(id)}/usage`, { period: label, resolution: series.resolution })).series;
      const sum = (dir) =>
        series.t.map((_, i) => old.columns.filter((c) => c.direction === dir && (!p.realm || c.realm_name === p.realm)).reduce((a, c) => a + (columnRates(old, c)[i] ?? 0), 0));
      overlay = [
        { label: `${label} down`, values: sum("down") },
        { label: `${label} up`, values: sum("up"), below: true },
      ];
    } catch (e) {
      main.append(failure(e));
    }
  }
  drawRates(graph, {
    t: series.t,
    zone,
    units,
    stacked: true,
    series: shown.map((c) => ({ label: `${c.realm_name} ${c.direction}`, values: columnRates(series, c), colour: colour(realms.indexOf(c.realm)), below: c.direction === "up" })),
    lines,
    overlay,
  });

  if (bill) {
    main.append(
      h(
        "section",
        { id: "bill" },
        h("h2", {}, `Bill so far (${billAnswer.standing.state})`),
        table(
          null,
          ["Charge", "Percentile", "How", "Coverage", "Over the commit", "Volume"],
          bill.lines.map((l) => [
            l.name,
            l.percentile ? bitRate(l.percentile.value?.rate ?? 0) : "–",
            l.percentile?.explanation ?? "–",
            l.percentile ? `${l.percentile.coverage.seen} of ${l.percentile.coverage.expected} samples (${l.percentile.coverage.missing} missing, ${l.percentile.coverage.estimated} estimated)` : "–",
            l.overage ? `${bitRate(l.overage.over)} (${l.overage.over_percent.toFixed(1)}%)` : "–",
            `${bytes(l.volume.down)} down, ${bytes(l.volume.up)} up`,
          ]),
        ),
      ),
    );
  }

  const now = t.rates.length ? t.rates.map((r) => `${r.realm} ${r.direction} ${rate(r.bits_per_second, units)}`).join("; ") : "no traffic";
  main.append(
    h(
      "section",
      { id: "shape" },
      h("h2", {}, "Plan and limits"),
      h(
        "dl",
        {},
        h("dt", {}, "Plan"),
        h("dd", { id: "tenant-plan" }, t.plan + (t.overage_from ? ` (moved by the overage automation from ${t.overage_from})` : "")),
        h("dt", {}, "Parent"),
        h("dd", {}, t.parent ?? "–"),
        h("dt", {}, "Addresses"),
        h("dd", {}, t.prefixes.join(", ") || t.interface || "–"),
        h("dt", {}, "Commit"),
        h("dd", {}, t.commit ?? "–"),
        h("dt", {}, "Now"),
        h("dd", {}, now),
        h("dt", {}, "Priority bands"),
        h("dd", {}, t.bands ? t.bands.map((b) => `${b.band} ${b.share_percent}%`).join(", ") : "off"),
      ),
      table(null, ["Direction", "Rate", "Ceil", "Realm caps"], shapeRows(t), { id: "ceilings" }),
    ),
  );
  main.append(tenantLatency(await get("latency", { tenant: t.id }).catch((e) => e)));
  if (session.may_write) {
    const plans = await get("plans").catch(() => ({ plans: [t.plan] }));
    main.append(adminForm(t, plans.plans.map((x) => x.name), () => update({}, { replace: true })));
  }
}
