// Latency as people read it (docs/latency.md): the alarms raised now, the
// probes' round trips, the watched interfaces, and a tenant's queues. The
// figures are GET /api/v1/latency's; times there are milliseconds.

import { failure, h, table } from "./dom.js";
import { bitRate } from "./format.js";

/** Milliseconds: `0.42 ms`, `12.3 ms`, `1.5 s`; nothing known: `–`. */
export function ms(v) {
  if (v == null || !Number.isFinite(v)) return "–";
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

/** An alarm's figure against its threshold, in the alarm's own unit. */
export function alarmFigure(a) {
  const unit = { probe_loss: (v) => `${v.toFixed(0)}%`, idle: (v) => `${v.toFixed(0)} s idle` }[a.kind] ?? ms;
  return `${unit(a.value)} (threshold ${unit(a.threshold)})`;
}

/** A probe's minute in one line. */
export function probeLine(p) {
  const f = p.figures;
  if (!f.received) return `no reply in the last minute (${f.sent} sent)`;
  return `median ${ms(f.p50_ms)} · jitter ${ms(f.jitter_ms)} · loss ${f.loss_percent.toFixed(1)}% · baseline ${ms(f.baseline_ms)}`;
}

function alarmsTable(alarms, id) {
  return alarms.length
    ? table(
        null,
        ["Alarm", "About", "Figure", ""],
        alarms.map((a) => [a.kind.replaceAll("_", " "), a.subject, alarmFigure(a), a.message]),
        { id },
      )
    : h("p.ok", { id }, "No latency alarm now.");
}

/** Whether an answer is "the policy has no [latency]". */
function notMeasured(answer) {
  return answer instanceof Error && answer.status === 404;
}

/** The overview's section: alarms, probes and interfaces. */
export function siteLatency(answer) {
  const section = h("section", { id: "latency" }, h("h2", {}, "Latency"));
  if (notMeasured(answer)) {
    section.append(h("p", {}, "Latency is not measured here (the policy has no [latency])."));
    return section;
  }
  if (answer instanceof Error) {
    section.append(failure(answer));
    return section;
  }
  section.append(alarmsTable(answer.alarms, "latency-alarms"));
  if (answer.probes.length) {
    section.append(
      table(
        null,
        ["Probe", "Last minute"],
        answer.probes.map((p) => [p.name, probeLine(p)]),
        { id: "probes" },
      ),
    );
  }
  if (answer.links.length) {
    section.append(
      h("p", { id: "links" }, answer.links.map((l) => `${l.name} ${l.up ? "up" : "down"}${l.up && l.idle_ms >= 1000 ? `, no packet for ${ms(l.idle_ms)}` : ""}`).join(" · ")),
    );
  }
  return section;
}

/**
 * A tenant's passive TCP round trips (GET /api/v1/latency's `tcp_rtt`),
 * one row per realm: the last whole minute, else the minute being filled.
 * The round trip is the two halves' medians added; each half's p95 is
 * shown (up: to the far side and back; down: the tenant's side).
 */
export function rttRows(entries) {
  return [...entries]
    .sort((a, b) => a.realm_name.localeCompare(b.realm_name))
    .map((r) => {
      const m = r.last ?? r.current;
      return [
        r.realm_name,
        r.last ? "last minute" : "this minute so far",
        ms(m.rtt_p50_ms),
        ms(m.up.p95_ms),
        ms(m.down.p95_ms),
        String(m.up.samples + m.down.samples),
        String(m.retransmits_up + m.retransmits_down),
      ];
    });
}

/** A tenant's section: its alarms and its queues (the busiest first). */
export function tenantLatency(answer) {
  const section = h("section", { id: "latency" }, h("h2", {}, "Latency"));
  if (notMeasured(answer)) {
    section.append(h("p", {}, "Latency is not measured here."));
    return section;
  }
  if (answer instanceof Error) {
    section.append(failure(answer));
    return section;
  }
  section.append(alarmsTable(answer.alarms, "tenant-latency-alarms"));
  const rtt = answer.tcp_rtt ?? [];
  section.append(
    rtt.length
      ? table("TCP round trips, passive (per realm)", ["Realm", "Minute", "Round trip (p50)", "Far side p95", "Tenant side p95", "Samples", "Retransmissions"], rttRows(rtt), { id: "tcp-rtt" })
      : h("p", { id: "tcp-rtt" }, "No TCP round trips measured for this tenant (they need [latency] tcp_rtt = true and the eBPF classifier, and TCP traffic with timestamps)."),
  );
  const classes = [...answer.classes].sort((a, b) => b.figures.delay_ms - a.figures.delay_ms);
  section.append(
    classes.length
      ? table(
          "Queues at the last reading (delay: backlog ÷ ceil)",
          ["Class", "Queue delay", "Backlog", "Sent", "Drops", "At the ceil"],
          classes.map((c) => {
            const f = c.figures;
            return [c.label, ms(f.delay_ms), `${f.backlog_packets} packets`, bitRate(f.sent_bps), String(f.drops_total), f.at_ceil ? `yes, ${ms(f.time_at_ceil_ms)}` : "no"];
          }),
          { id: "queues" },
        )
      : h("p", {}, "No class of this tenant was read yet."),
  );
  return section;
}
