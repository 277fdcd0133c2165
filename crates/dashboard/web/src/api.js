// Calls to the daemon's /api/v1, with the session cookie the browser
// holds (HttpOnly: this script never sees the token). Writes carry the
// CSRF header, which a page of another site cannot set.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function answer(r) {
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text };
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

/** GET a JSON answer. */
export async function get(path, params) {
  const q = params ? `?${new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== ""))}` : "";
  const r = await fetch(`/api/v1/${path}${q === "?" ? "" : q}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  return answer(r);
}

/** A write: JSON body, CSRF header. */
export async function send(method, path, body) {
  const r = await fetch(`/api/v1/${path}`, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-Tollgate-CSRF": "1" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer(r);
}
