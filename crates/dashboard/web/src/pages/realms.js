// Traffic per realm, as rtacct shows it (to and from each realm, bytes and
// packets), and one graph per realm: the site's traffic with it.

import { get } from "../api.js";
import { colour, drawRates } from "../chart.js";
import { h, table } from "../dom.js";
import { bytes, columnRates, zoneName } from "../format.js";
import { rangeParams, rangePicker } from "../range.js";

export async function realms(main, { units }) {
  const range = rangeParams();
  const [report, usage] = await Promise.all([get("realms", range), get("site/usage", range)]);
  const zone = report.range.zone;
  main.replaceChildren(
    h("h1", {}, "Realms"),
    h("p.zone", {}, `${report.range.label}; days in ${zoneName(zone)}.`),
    rangePicker(usage.period),
    table(
      null,
      ["Realm", "Bytes to", "Packets to", "Bytes from", "Packets from"],
      report.realms.map((r) => [r.name, bytes(r.bytes_to), String(r.packets_to), bytes(r.bytes_from), String(r.packets_from)]),
      { id: "realms" },
    ),
    h("p.note", {}, "“To” is the tenants' traffic toward the realm (up); “from” is toward the tenants (down)."),
  );
  const ids = [...new Set(usage.columns.map((c) => c.realm))];
  for (const [i, realm] of ids.entries()) {
    const cols = usage.columns.filter((c) => c.realm === realm);
    const graph = h("div.graph", { "data-realm": cols[0].realm_name, "aria-label": `${cols[0].realm_name}: down above zero, up below` });
    main.append(h("section", {}, h("h2", {}, cols[0].realm_name), graph));
    drawRates(graph, {
      t: usage.t,
      zone,
      units,
      height: 200,
      series: cols.map((c) => ({ label: c.direction, values: columnRates(usage, c), colour: colour(i), below: c.direction === "up" })),
    });
  }
}
