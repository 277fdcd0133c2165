import { describe, expect, test } from "vitest";
import { axisTime, bitRate, bytes, byteRate, columnRates, localTime, parseRate, percent, previousPeriod, zoneName } from "../src/format.js";

describe("units", () => {
  test("rates use SI prefixes of bits", () => {
    expect(bitRate(0)).toBe("0 bit/s");
    expect(bitRate(999)).toBe("999 bit/s");
    expect(bitRate(1000)).toBe("1 kbit/s");
    expect(bitRate(12_345_678)).toBe("12.3 Mbit/s");
    expect(bitRate(999_950)).toBe("1 Mbit/s");
    expect(bitRate(2.5e9)).toBe("2.5 Gbit/s");
    expect(bitRate(-3e6)).toBe("-3 Mbit/s");
  });
  test("volumes use IEC prefixes of bytes", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1023)).toBe("1023 B");
    expect(bytes(1024)).toBe("1 KiB");
    expect(bytes(1536 * 1024 * 1024)).toBe("1.5 GiB");
    expect(byteRate(8 * 1024 * 1024)).toBe("1 MiB/s");
  });
  test("percent and tc rates", () => {
    expect(percent(1, 4)).toBe("25%");
    expect(percent(1, 0)).toBe("–");
    expect(parseRate("10mbit")).toBe(10e6);
    expect(parseRate("1.5 Gbit")).toBe(1.5e9);
    expect(parseRate("fast")).toBeNaN();
  });
});

describe("time", () => {
  test("instants are shown in the billing zone", () => {
    // 2026-11-03T13:05:00Z
    const t = Date.UTC(2026, 10, 3, 13, 5) / 1000;
    expect(localTime(t, "UTC")).toBe("2026-11-03 13:05");
    expect(localTime(t, "Europe/Berlin")).toBe("2026-11-03 14:05");
    expect(localTime(t, "Asia/Kolkata")).toBe("2026-11-03 18:35");
    expect(zoneName("UTC")).toBe("UTC");
    expect(zoneName("Europe/Berlin", t)).toMatch(/^Europe\/Berlin \(/);
  });
  test("axis labels are 24-hour, in the zone", () => {
    const t = Date.UTC(2026, 10, 3, 13, 5) / 1000;
    expect(axisTime(t, "Europe/Berlin", 3600)).toBe("14:05");
    expect(axisTime(Date.UTC(2026, 10, 2, 23) / 1000, "Europe/Berlin", 30 * 86400)).toBe("11-03");
    expect(axisTime(t, "UTC", 30 * 86400)).toBe("11-03 13:05");
  });
  test("periods step back across a year", () => {
    expect(previousPeriod("2026-01")).toBe("2025-12");
    expect(previousPeriod("2026-11")).toBe("2026-10");
    expect(previousPeriod("soon")).toBeNull();
  });
  test("bytes per bucket become bits per second", () => {
    const s = { t: [0, 300], seconds: [300, 300], columns: [] };
    expect(columnRates(s, { bytes: [375, 0] })).toEqual([10, 0]);
  });
});
