// Each page's state lives in its URL (range, realm, tenant, units,
// sorting…), so a link or a reload shows the same view.

let render = () => {};

/** Sets what runs when the URL changes. */
export function onChange(f) {
  render = f;
}

/** The query string's values. */
export function params() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

function href(path, values) {
  const q = new URLSearchParams(Object.entries(values).filter(([, v]) => v != null && v !== "" && v !== false));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Changes some values of the query string and shows the page again. */
export function update(patch, { replace = false } = {}) {
  const next = href(location.pathname, { ...params(), ...patch });
  history[replace ? "replaceState" : "pushState"](null, "", next);
  render();
}

/** Goes to another page, keeping the units. */
export function go(path, values = {}) {
  const units = params().units;
  history.pushState(null, "", href(path, { units, ...values }));
  render();
}

/** A link to a page with these values, keeping the units. */
export function link(path, values = {}) {
  return href(path, { units: params().units, ...values });
}
