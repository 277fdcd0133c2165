// Units and time, as people read them: rates in bits per second with SI
// prefixes (k = 1000), volumes in bytes with IEC prefixes (Ki = 1024),
// instants in the billing zone's local time with the zone named.

const SI = ["", "k", "M", "G", "T", "P", "E"];
const IEC = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/** Three significant digits, without a trailing ".0". */
function digits(v) {
  const a = Math.abs(v);
  const s = a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  return s.replace(/\.0+$/, "").replace(/(\.\d*[1-9])0+$/, "$1");
}

function scaled(value, base, prefixes) {
  if (!Number.isFinite(value)) return ["–", ""];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= base && i < prefixes.length - 1) {
    v /= base;
    i += 1;
  }
  // 999.95 kbit/s rounds to "1000": show it as 1 Mbit/s instead.
  if (Math.abs(Number(digits(v))) >= base && i < prefixes.length - 1) {
    v /= base;
    i += 1;
  }
  return [digits(v), prefixes[i]];
}

/** Bits per second, SI: `12.3 Mbit/s`. */
export function bitRate(bps) {
  const [n, p] = scaled(bps, 1000, SI);
  return `${n} ${p}bit/s`;
}

/** Bytes, IEC: `1.5 GiB`. */
export function bytes(n) {
  const [v, p] = scaled(Number(n), 1024, IEC);
  return `${v} ${p}B`;
}

/** Bytes per second, IEC: `1.5 MiB/s`. */
export function byteRate(bps) {
  const [v, p] = scaled(bps / 8, 1024, IEC);
  return `${v} ${p}B/s`;
}

/** A rate (given in bit/s) in the chosen units: `bits` or `bytes`. */
export function rate(bps, units) {
  return units === "bytes" ? byteRate(bps) : bitRate(bps);
}

/** A share in percent, `42%`, or `–`. */
export function percent(part, whole) {
  if (!whole || !Number.isFinite(part)) return "–";
  return `${digits((100 * part) / whole)}%`;
}

/** A tc-style rate (`10mbit`, `1gbit`, `500kbit`) in bit/s, or NaN. */
export function parseRate(text) {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|tbit)?\s*$/i.exec(String(text ?? ""));
  if (!m) return NaN;
  const mult = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 }[(m[2] || "bit").toLowerCase()];
  return Number(m[1]) * mult;
}

const formats = new Map();

/** An instant (Unix seconds) as local time in `zone`: `2026-11-03 14:05`. */
export function localTime(seconds, zone, withSeconds = false) {
  const key = `${zone}|${withSeconds}`;
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("sv-SE", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: withSeconds ? "2-digit" : undefined,
      hourCycle: "h23",
    });
    formats.set(key, f);
  }
  return f.format(new Date(seconds * 1000));
}

/**
 * A time axis label in `zone`, 24-hour: `14:05` when the axis spans two
 * days or less, else `11-03` (or `11-03 14:00` off midnight).
 */
export function axisTime(seconds, zone, span) {
  const full = localTime(seconds, zone);
  const [date, time] = full.split(" ");
  if (span <= 2 * 86400) return time;
  return time === "00:00" ? date.slice(5) : `${date.slice(5)} ${time}`;
}

/** The zone's short name at that instant (`CET`, `UTC`, `GMT+1`). */
export function zoneName(zone, seconds = Date.now() / 1000) {
  try {
    const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" }).formatToParts(
      new Date(seconds * 1000),
    );
    const short = parts.find((p) => p.type === "timeZoneName")?.value;
    return short && short !== zone ? `${zone} (${short})` : zone;
  } catch {
    return zone;
  }
}

/** The billing period before `label` (`2026-01` → `2025-12`). */
export function previousPeriod(label) {
  const m = /^(\d{4})-(\d{2})$/.exec(label ?? "");
  if (!m) return null;
  let y = Number(m[1]);
  let mo = Number(m[2]) - 1;
  if (mo === 0) {
    mo = 12;
    y -= 1;
  }
  return `${String(y).padStart(4, "0")}-${String(mo).padStart(2, "0")}`;
}

/**
 * A series from the API (`t`, `seconds`, columns of bytes per bucket) as
 * bits per second per bucket: bytes × 8 / the bucket's length.
 */
export function columnRates(series, column) {
  return column.bytes.map((b, i) => (Number(b) * 8) / Math.max(series.seconds[i], 1));
}
