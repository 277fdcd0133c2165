// The site at a glance: traffic by realm and direction over the range and
// now, against the uplink's capacity; the busiest tenants now; tenants in
// the overage plan; the flow collector's health; latency; recent events.

import { get } from "../api.js";
import { colour, drawRates } from "../chart.js";
import { failure, h, table, tile } from "../dom.js";
import { bitRate, bytes, columnRates, localTime, percent, rate, zoneName } from "../format.js";
import { rangeParams, rangePicker } from "../range.js";
import { siteLatency } from "../latency.js";
import { link } from "../url.js";

function meter(label, bps, capacity, units) {
  const share = capacity ? Math.min(1, bps / capacity) : 0;
  return h(
    "div.meter",
    {},
    h("div.label", {}, label),
    h("div.value", {}, `${rate(bps, units)} of ${rate(capacity, units)} (${percent(bps, capacity)})`),
    h("div.track", { role: "meter", "aria-label": `${label} against the uplink`, "aria-valuemin": 0, "aria-valuemax": capacity, "aria-valuenow": Math.round(bps) }, h("div.fill", { style: `width:${(share * 100).toFixed(1)}%` })),
  );
}

/** The projection against the upstream's commit, in words (docs/transit.md). */
export function transitNote(p) {
  if (!p.commit_bps) return null;
  const state = p.over ? "over the commit" : p.at_risk ? "at risk: the budget runs out before the period ends" : "within the commit";
  return `${p.upstream}: commit ${bitRate(p.commit_bps)} · projected ${bitRate(p.projected_bps)} · budget ${p.left} of ${p.budget} samples left (${p.spent} spent) · ${state}`;
}

export async function overview(main, { units }) {
  const range = rangeParams();
  const [site, usage, latency] = await Promise.all([get("site"), get("site/usage", range).catch((e) => e), get("latency").catch((e) => e)]);
  const zone = site.zone;
  main.replaceChildren(
    h("h1", {}, "Overview"),
    h("p.zone", {}, `Times in ${zoneName(zone)}. Period ${site.period}.`),
  );
  const tiles = h(
    "section.tiles",
    { "aria-label": "Now" },
    meter("Down now", site.now.down_bps, site.capacity.down_bps, units),
    meter("Up now", site.now.up_bps, site.capacity.up_bps, units),
    tile("Tenants", String(site.tenants)),
    tile("In the overage plan", String(site.overage.length)),
    site.percentile
      ? tile(
          `Site ${site.percentile.label} so far`,
          `${bitRate(site.percentile.down_bps)} down · ${bitRate(site.percentile.up_bps)} up`,
          transitNote(site.percentile),
        )
      : null,
  );
  main.append(tiles);

  const graph = h("div.graph", { id: "site-graph", "aria-label": "The site's traffic by realm: down above zero, up below" });
  const section = h("section", {}, h("h2", {}, "Traffic by realm"), rangePicker(site.period), graph);
  main.append(section);
  if (usage instanceof Error) {
    graph.replaceWith(failure(usage));
  } else {
    const realms = [...new Set(usage.columns.map((c) => c.realm))];
    const series = usage.columns.map((c) => ({
      label: `${c.realm_name} ${c.direction}`,
      values: columnRates(usage, c),
      colour: colour(realms.indexOf(c.realm)),
      below: c.direction === "up",
    }));
    drawRates(graph, { t: usage.t, zone, units, series, stacked: true });
    section.append(
      h("p.note", {}, `${usage.range.label}: ${usage.resolution === "1d" ? "daily" : usage.resolution === "1h" ? "hourly" : "5-minute"} averages; down above zero, up below.`),
    );
  }

  const now = h("section.now", {}, h("h2", {}, "Now, by realm"));
  now.append(
    table(
      null,
      ["Realm", "Down", "Up"],
      site.now.realms.map((r) => [r.realm_name, rate(r.down_bps, units), rate(r.up_bps, units)]),
    ),
  );
  main.append(now);

  main.append(
    h(
      "section",
      {},
      h("h2", {}, "Busiest tenants now"),
      site.top.length
        ? table(
            null,
            ["Tenant", "Down", "Up"],
            site.top.map((r) => [h("a", { href: link(`/tenants/${r.tenant}`) }, r.name), rate(r.down_bps, units), rate(r.up_bps, units)]),
            { id: "top" },
          )
        : h("p", {}, "No traffic now."),
    ),
  );

  main.append(
    h(
      "section",
      {},
      h("h2", {}, "In the overage plan"),
      site.overage.length
        ? table(
            null,
            ["Tenant", "From plan", "To plan", "Since", "Why"],
            site.overage.map((m) => [
              h("a", { href: link(`/tenants/${m.tenant}`) }, m.name),
              m.from_plan,
              m.to_plan,
              localTime(Date.parse(m.moved_at) / 1000, zone),
              m.why,
            ]),
          )
        : h("p", {}, "No tenant is in the overage plan."),
    ),
  );

  const f = site.flows;
  main.append(
    h(
      "section",
      {},
      h("h2", {}, "Flow collector"),
      f
        ? h(
            "p",
            { class: f.healthy ? "ok" : "warn" },
            `${f.running ? "Running" : "Stopped"}; ${f.exporters} exporters; ${f.records} records, ${f.malformed} malformed, ${f.drops} dropped by the kernel, ${f.sequence_gaps} sequence gaps. `,
            h("a", { href: link("/flows") }, "Details"),
          )
        : h("p", {}, "No flow collector runs here (the policy has no [flows])."),
    ),
  );

  main.append(siteLatency(latency));

  main.append(
    h(
      "section",
      {},
      h("h2", {}, "Events"),
      site.events.length
        ? table(
            null,
            ["When", "What", ""],
            site.events
              .slice()
              .reverse()
              .map((e) => [localTime(Date.parse(e.at) / 1000, zone, true), e.kind.replaceAll("_", " "), e.message]),
            { id: "events" },
          )
        : h("p", {}, "Nothing happened yet."),
    ),
  );
  if (usage && !(usage instanceof Error)) {
    const total = usage.columns.reduce((a, c) => a + Number(c.total_bytes), 0);
    main.append(h("p.note", {}, `Total over the range: ${bytes(total)}.`));
  }
}
