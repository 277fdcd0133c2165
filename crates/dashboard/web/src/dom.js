// A few helpers to build the pages' elements without a framework. Text is
// always set as text, never as HTML, so a tenant's name cannot inject
// markup.

/** An element: `h("a.link", {href}, "text", child…)`. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the page's Content-Security-Policy refuses
    // inline style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table from headers and rows of cells. */
export function table(caption, headers, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => (x instanceof Node ? h("th", { scope: "col" }, x) : h("th", { scope: "col" }, x))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c)))))),
  );
}

/** A message in place of something that failed. */
export function failure(e) {
  return h("p.error", { role: "alert" }, e?.message || String(e));
}

/** A labelled figure: a tile on the overview. */
export function tile(label, value, extra) {
  return h("div.tile", {}, h("div.label", {}, label), h("div.value", {}, value), extra ? h("div.extra", {}, extra) : null);
}
