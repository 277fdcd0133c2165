// Every tenant, 50 to a page from the API (which filters, sorts and pages
// 10,000 tenants on the server): search, sort by current rate or period
// volume, and each row's 95th so far and commit use, filled in once the
// page's bills arrive.

import { get } from "../api.js";
import { failure, h } from "../dom.js";
import { bitRate, bytes, percent, rate } from "../format.js";
import { rangeParams } from "../range.js";
import { link, params, update } from "../url.js";

const PAGE = 50;

const COLUMNS = [
  ["id", "Id"],
  ["name", "Name"],
  [null, "Plan"],
  ["rate", "Down now"],
  ["rate", "Up now"],
  ["volume", "Period volume"],
  [null, "95th so far"],
  [null, "Commit"],
  [null, "Commit use"],
];

function billed(bill) {
  const line = bill?.bill?.lines?.find((l) => l.percentile) ?? null;
  return line?.percentile?.value?.rate ?? null;
}

export async function tenants(main, { units }) {
  const p = params();
  const sort = p.sort || "id";
  const order = p.order || "";
  const offset = Number(p.offset || 0);
  const search = h("input", {
    type: "search",
    value: p.q || "",
    placeholder: "name or id",
    "aria-label": "Search tenants by name or id",
  });
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => update({ q: search.value, offset: null }, { replace: true }), 250);
  });
  main.replaceChildren(h("h1", {}, "Tenants"), h("div.controls", {}, h("label", {}, "Search ", search)));
  const list = await get("tenants", { q: p.q, sort, order, offset, limit: PAGE, ...rangeParams() });
  const headers = COLUMNS.map(([key, label]) => {
    if (!key) return label;
    const active = sort === key;
    const next = active && (order || (key === "rate" || key === "volume" ? "desc" : "asc")) === "desc" ? "asc" : "desc";
    return h(
      "button.sort",
      {
        type: "button",
        "aria-sort": active ? ((order || (key === "id" || key === "name" ? "asc" : "desc")) === "asc" ? "ascending" : "descending") : null,
        onclick: () => update({ sort: key, order: next, offset: null }),
      },
      label,
      active ? ((order || (key === "id" || key === "name" ? "asc" : "desc")) === "asc" ? " ▲" : " ▼") : "",
    );
  });
  const cells = new Map();
  const body = list.tenants.map((t) => {
    const p95 = h("td.num", { "data-col": "p95" }, "…");
    const use = h("td.num", { "data-col": "use" }, "…");
    cells.set(t.id, { p95, use, commit: t.commit_bps });
    return h(
      "tr",
      { "data-tenant": t.id },
      h("td.num", {}, String(t.id)),
      h("td", {}, h("a", { href: link(`/tenants/${t.id}`, rangeParams()) }, t.name)),
      h("td", {}, t.plan),
      h("td.num", {}, rate(t.down_bps, units)),
      h("td.num", {}, rate(t.up_bps, units)),
      h("td.num", { "data-col": "volume" }, t.period_bytes == null ? "–" : bytes(t.period_bytes)),
      p95,
      h("td.num", {}, t.commit_bps ? bitRate(t.commit_bps) : "–"),
      use,
    );
  });
  const tableEl = h(
    "table",
    { id: "tenants" },
    h("caption", {}, `${list.total} tenants${p.q ? ` matching “${p.q}”` : ""}; ${offset + 1}–${Math.min(offset + PAGE, list.total)} shown`),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, body),
  );
  const pager = h(
    "nav.pager",
    { "aria-label": "Pages of tenants" },
    h("button", { type: "button", disabled: offset === 0, onclick: () => update({ offset: Math.max(0, offset - PAGE) || null }) }, "‹ Previous"),
    h("span", {}, ` page ${Math.floor(offset / PAGE) + 1} of ${Math.max(1, Math.ceil(list.total / PAGE))} `),
    h("button", { type: "button", disabled: offset + PAGE >= list.total, onclick: () => update({ offset: offset + PAGE }) }, "Next ›"),
  );
  main.append(tableEl, pager);
  // For the bench: the list is drawn; its 95th column comes next.
  performance.mark("list /tenants");
  if (!list.tenants.length) return;
  // The page's bills, after the rows are shown.
  try {
    const ids = list.tenants.map((t) => t.id).join(",");
    const { bills } = await get("bills", { tenants: ids, period: rangeParams().period });
    for (const b of bills) {
      const c = cells.get(b.bill.tenant);
      if (!c) continue;
      const v = billed(b);
      c.p95.textContent = v == null ? "–" : bitRate(v);
      c.use.textContent = v == null || !c.commit ? "–" : percent(v, c.commit);
    }
    for (const c of cells.values()) {
      if (c.p95.textContent === "…") c.p95.textContent = "–";
      if (c.use.textContent === "…") c.use.textContent = "–";
    }
    performance.mark("p95 /tenants");
  } catch (e) {
    main.append(failure(e));
  }
}
