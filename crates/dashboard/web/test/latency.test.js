import { describe, expect, test } from "vitest";
import { alarmFigure, ms, probeLine, rttRows } from "../src/latency.js";

describe("latency figures", () => {
  test("milliseconds keep what matters at each size", () => {
    expect(ms(0.4213)).toBe("0.42 ms");
    expect(ms(12.34)).toBe("12.3 ms");
    expect(ms(150.4)).toBe("150 ms");
    expect(ms(3000)).toBe("3.0 s");
    expect(ms(null)).toBe("–");
    expect(ms(Number.NaN)).toBe("–");
  });
  test("an alarm's figure is in its own unit", () => {
    expect(alarmFigure({ kind: "queue_delay", value: 3000, threshold: 1000 })).toBe("3.0 s (threshold 1.0 s)");
    expect(alarmFigure({ kind: "probe_loss", value: 25, threshold: 10 })).toBe("25% (threshold 10%)");
    expect(alarmFigure({ kind: "idle", value: 12, threshold: 10 })).toBe("12 s idle (threshold 10 s idle)");
  });
  test("a probe's minute, or that nothing came back", () => {
    const f = { sent: 60, received: 59, loss_percent: 1.6667, p50_ms: 40.25, jitter_ms: 0.5, baseline_ms: 40 };
    expect(probeLine({ figures: f })).toBe("median 40.3 ms · jitter 0.50 ms · loss 1.7% · baseline 40.0 ms");
    expect(probeLine({ figures: { ...f, received: 0 } })).toBe("no reply in the last minute (60 sent)");
  });
  test("a tenant's round trips: the last whole minute, else the one being filled", () => {
    const half = (p95, samples) => ({ samples, p50_ms: p95 / 2, p95_ms: p95 });
    const minute = (p50, samples) => ({ rtt_p50_ms: p50, up: half(30, samples), down: half(2, samples), retransmits_up: 1, retransmits_down: 0 });
    const rows = rttRows([
      { tenant: 1, realm: 2, realm_name: "international", current: minute(99, 1), last: minute(20.5, 40) },
      { tenant: 1, realm: 1, realm_name: "national", current: minute(4.2, 3), last: null },
    ]);
    expect(rows).toEqual([
      ["international", "last minute", "20.5 ms", "30.0 ms", "2.00 ms", "80", "1"],
      ["national", "this minute so far", "4.20 ms", "30.0 ms", "2.00 ms", "6", "1"],
    ]);
  });
});
