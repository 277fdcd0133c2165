// The dashboard's entry: who is signed in, which page the URL names, and
// the bar (pages, units, theme, sign-out). A tenant's token sees its own
// tenant's page only; the daemon enforces that on every API call too.

import "./style.css";
import { ApiError, get, send } from "./api.js";
import { keepWidths } from "./chart.js";
import { failure, h } from "./dom.js";
import { flows } from "./pages/flows.js";
import { overview } from "./pages/overview.js";
import { realms } from "./pages/realms.js";
import { signin } from "./pages/signin.js";
import { tenant } from "./pages/tenant.js";
import { tenants } from "./pages/tenants.js";
import { go, link, onChange, params, update } from "./url.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const signout = document.getElementById("signout");
const unitsSelect = document.getElementById("units");
const themeButton = document.getElementById("theme");

const SITE_PAGES = [
  ["/", "Overview"],
  ["/tenants", "Tenants"],
  ["/realms", "Realms"],
  ["/flows", "Flows"],
];

let session = null;
let timer = 0;
let generation = 0;

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  themeButton.textContent = theme === "dark" ? "Dark" : theme === "light" ? "Light" : "Auto";
  themeButton.setAttribute("aria-label", `Theme: ${themeButton.textContent}; switch`);
}

themeButton.addEventListener("click", () => {
  const order = ["auto", "light", "dark"];
  const next = order[(order.indexOf(localStorage.getItem("theme") || "auto") + 1) % order.length];
  localStorage.setItem("theme", next);
  applyTheme(next);
  show();
});
applyTheme(localStorage.getItem("theme") || "auto");

unitsSelect.addEventListener("change", () => update({ units: unitsSelect.value === "bits" ? null : unitsSelect.value }, { replace: true }));

signout.addEventListener("click", async () => {
  try {
    await send("DELETE", "session");
  } finally {
    session = null;
    history.pushState(null, "", "/");
    show();
  }
});

// Links inside the dashboard change the page without reloading it.
document.addEventListener("click", (e) => {
  const a = e.target.closest?.("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  e.preventDefault();
  history.pushState(null, "", url.pathname + url.search);
  show();
});
addEventListener("popstate", () => show());

function bar() {
  nav.replaceChildren();
  if (!session) {
    who.textContent = "";
    signout.hidden = true;
    return;
  }
  const pages = session.tenant == null ? SITE_PAGES : [[`/tenants/${session.tenant}`, "My traffic"]];
  for (const [path, label] of pages) {
    const current = path === "/" ? location.pathname === "/" : location.pathname === path || (path === "/tenants" && location.pathname.startsWith("/tenants/"));
    nav.append(h("a", { href: link(path), "aria-current": current ? "page" : null }, label));
  }
  who.textContent = `${session.name} (${session.scope})`;
  signout.hidden = false;
}

async function page(mine) {
  const path = location.pathname;
  const units = params().units === "bytes" ? "bytes" : "bits";
  unitsSelect.value = units;
  const ctx = { units, session, zone: session.zone };
  // A tenant's token has one page: its own tenant.
  if (session.tenant != null) {
    const own = `/tenants/${session.tenant}`;
    if (path !== own) {
      history.replaceState(null, "", link(own));
      return page(mine);
    }
  }
  const m = /^\/tenants\/([^/]+)$/.exec(path);
  let answer;
  if (path === "/") answer = await overview(main, ctx);
  else if (path === "/tenants") answer = await tenants(main, ctx);
  else if (m) answer = await tenant(main, { ...ctx, id: decodeURIComponent(m[1]) });
  else if (path === "/realms") answer = await realms(main, ctx);
  else if (path === "/flows") answer = await flows(main, ctx);
  else main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "/" }, "Overview")));
  // For the browser tests and the bench: when each page was ready.
  performance.mark(`ready ${path}`);
  if (answer?.refresh && mine === generation) timer = setTimeout(() => show(true), answer.refresh);
}

/** Shows the page the URL names (`quiet`: a refresh, keeping focus). */
async function show(quiet = false) {
  clearTimeout(timer);
  const mine = ++generation;
  if (!session) {
    try {
      session = await get("session");
      if (!session.signed_in) session = null;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) {
        main.replaceChildren(failure(e));
        return;
      }
    }
  }
  bar();
  if (!session) {
    signin(main, () => show());
    return;
  }
  document.body.dataset.loading = "1";
  try {
    await page(mine);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session = null;
      return show();
    }
    if (mine === generation) main.replaceChildren(failure(e));
  } finally {
    if (mine === generation) {
      delete document.body.dataset.loading;
      bar();
      if (!quiet) document.title = `${main.querySelector("h1")?.textContent ?? ""} · tollgate`;
    }
  }
}

onChange(() => show());
keepWidths();
show();

// Keyboard: "g" then "o", "t", "r" or "f" goes to a page; "/" searches.
let pending = false;
addEventListener("keydown", (e) => {
  if (e.target.closest?.("input, select, textarea") || e.metaKey || e.ctrlKey || e.altKey || !session || session.tenant != null) return;
  if (e.key === "/" && location.pathname === "/tenants") {
    e.preventDefault();
    main.querySelector('input[type="search"]')?.focus();
    return;
  }
  if (pending) {
    pending = false;
    const to = { o: "/", t: "/tenants", r: "/realms", f: "/flows" }[e.key];
    if (to) go(to);
    return;
  }
  pending = e.key === "g";
});
