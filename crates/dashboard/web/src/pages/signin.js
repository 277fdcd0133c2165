// Sign-in: the token is sent once; the daemon answers with an HttpOnly,
// SameSite=Strict session cookie, and this page never keeps the token.

import { send } from "../api.js";
import { h } from "../dom.js";

export function signin(main, done) {
  const token = h("input", { type: "password", id: "token", autocomplete: "current-password", required: true, "aria-describedby": "token-help" });
  const message = h("p.message", { role: "alert", id: "signin-message" });
  const form = h(
    "form",
    {
      id: "signin",
      onsubmit: async (e) => {
        e.preventDefault();
        message.textContent = "";
        try {
          await send("POST", "session", { token: token.value.trim() });
          token.value = "";
          done();
        } catch (err) {
          message.textContent = err.message;
        }
      },
    },
    h("label", { for: "token" }, "API token"),
    token,
    h("p.note", { id: "token-help" }, "A token from `tollgate token add NAME --scope read|admin|tenant:ID`. It is exchanged for a session; sign out ends it."),
    h("button", { type: "submit" }, "Sign in"),
    message,
  );
  main.replaceChildren(h("h1", {}, "Sign in"), form);
  token.focus();
}
