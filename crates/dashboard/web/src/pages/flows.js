// The flow collector: its exporters, records per second (between two
// readings of its status, 5 s apart), malformed datagrams, kernel drops
// and sequence gaps.

import { get } from "../api.js";
import { h, table } from "../dom.js";
import { localTime } from "../format.js";

let last = null;

function perSecond(now, before, key, address) {
  if (!before) return "…";
  const secs = (Date.parse(now.updated) - Date.parse(before.updated)) / 1000;
  if (!(secs > 0)) return "…";
  const a = before.exporters.find((e) => e.address === address);
  const b = now.exporters.find((e) => e.address === address);
  if (!a || !b) return "…";
  return ((b[key] - a[key]) / secs).toFixed(1);
}

export async function flows(main, ctx) {
  // Without a collector there is no status to ask for (and asking would
  // be a 404 in the browser's console).
  const site = await get("site");
  if (!site.flows) {
    main.replaceChildren(h("h1", {}, "Flows"), h("p", {}, "No flow collector runs here: the policy has no [flows] (docs/flows.md)."));
    return;
  }
  const s = await get("flows/status");
  const before = last && last.started === s.started ? last : null;
  last = s;
  const zone = ctx.zone;
  const drops = s.sockets.reduce((a, k) => a + k.kernel_drops, 0);
  main.replaceChildren(
    h("h1", {}, "Flows"),
    h(
      "p",
      { class: s.running ? "ok" : "warn" },
      `${s.running ? "Running" : "Stopped"} since ${localTime(Date.parse(s.started) / 1000, zone)}, last update ${localTime(Date.parse(s.updated) / 1000, zone, true)}; listening on ${s.listen.join(", ")}.`,
    ),
    table(
      "Sockets",
      ["Address", "Datagrams", "Kernel drops", "Truncated", "Refused", "Receive errors"],
      s.sockets.map((k) => [k.local, String(k.datagrams), String(k.kernel_drops), String(k.truncated), String(k.refused), String(k.receive_errors)]),
      { id: "sockets" },
    ),
    table(
      "Exporters",
      ["Exporter", "Allowed", "Records", "Records/s", "Malformed", "Sequence gaps", "Unknown templates", "Last error"],
      s.exporters.map((e) => [
        e.address,
        e.allowed ? "yes" : "no",
        String(e.flows),
        perSecond(s, before, "flows", e.address),
        String(e.malformed),
        String(e.sequence_gaps),
        String(e.unknown_template_sets),
        e.last_error ?? "",
      ]),
      { id: "exporters" },
    ),
    h("p.note", {}, `Kernel drops over every socket: ${drops}. Records per second are measured between two readings 5 s apart.`),
  );
  return { refresh: 5000 };
}
