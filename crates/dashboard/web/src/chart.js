// Time series drawn with uPlot: rates in bit/s (or byte/s), down above
// zero and up below it, realms in colours that colour-blind people tell
// apart (Okabe & Ito's palette), the time axis in the billing zone.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { axisTime, localTime, rate } from "./format.js";

/** Okabe & Ito: distinct for the common kinds of colour blindness. */
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];

/** The colour of the `i`th realm. */
export function colour(i) {
  return PALETTE[i % PALETTE.length];
}

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

/**
 * Draws rates into `el`.
 *
 * - `t`: bucket starts (Unix seconds); `zone`: the billing zone;
 * - `series`: `{label, values (bit/s, ≥ 0), colour, below}`; `below`
 *   draws it under zero (the up direction);
 * - `stacked`: each side's series are stacked;
 * - `lines`: horizontal lines `{label, value (signed bit/s), colour}`
 *   (the 95th, the commit);
 * - `overlay`: dashed series drawn as they are (the previous period).
 *
 * Returns the uPlot instance, also kept as `el.chart` (the browser tests
 * read its data).
 */
export function drawRates(el, { t, zone, units, series, stacked = false, lines = [], overlay = [], height = 280 }) {
  el.replaceChildren();
  el.chart?.destroy?.();
  const grid = css("--grid", "rgba(128,128,128,0.25)");
  const fg = css("--fg", "#222");
  const data = [t];
  const opts = [];
  const sides = [series.filter((s) => !s.below), series.filter((s) => s.below)];
  for (const [side, list] of sides.entries()) {
    const sign = side === 0 ? 1 : -1;
    let sum = t.map(() => 0);
    const drawn = [];
    for (const s of list) {
      const values = stacked ? s.values.map((v, i) => (sum[i] += v)) : s.values;
      if (stacked) sum = sum.slice();
      drawn.push({ s, values: values.map((v) => sign * v), raw: s.values });
    }
    // Stacked: the outermost sum first, so each inner area is painted over it.
    for (const d of stacked ? drawn.reverse() : drawn) {
      data.push(d.values);
      opts.push({
        label: d.s.label,
        stroke: d.s.colour,
        fill: alpha(d.s.colour, stacked ? 0.85 : 0.18),
        width: stacked ? 1 : 1.5,
        points: { show: false },
        value: (_, __, i) => (i == null ? "–" : rate(d.raw[i] ?? 0, units)),
      });
    }
  }
  for (const o of overlay) {
    data.push(o.values.map((v) => (o.below ? -v : v)));
    opts.push({ label: o.label, stroke: o.colour ?? fg, dash: [4, 4], width: 1, points: { show: false }, value: (_, v) => (v == null ? "–" : rate(Math.abs(v), units)) });
  }
  for (const l of lines) {
    data.push(t.map(() => l.value));
    opts.push({ label: l.label, stroke: l.colour ?? fg, dash: [8, 4], width: 2, points: { show: false }, value: () => rate(Math.abs(l.value), units) });
  }
  const axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
  const u = new uPlot(
    {
      width: Math.max(el.clientWidth || 600, 300),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [
        { ...axis, values: (u, ticks) => ticks.map((v) => axisTime(v, zone, (t[t.length - 1] ?? 0) - (t[0] ?? 0))) },
        { ...axis, size: 90, values: (_, ticks) => ticks.map((v) => rate(Math.abs(v), units)) },
      ],
      series: [{ label: "time", value: (_, v) => (v == null ? "–" : localTime(v, zone)) }, ...opts],
    },
    data,
    el,
  );
  el.chart = u;
  performance.mark(`graph ${el.id || el.dataset.realm || ""}`);
  el.dataset.points = String(t.length);
  return u;
}

/** Redraws charts at their container's width when the window changes. */
export function keepWidths() {
  let pending = 0;
  addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => {
      for (const el of document.querySelectorAll(".graph")) {
        el.chart?.setSize({ width: Math.max(el.clientWidth, 300), height: el.chart.height });
      }
    });
  });
}
