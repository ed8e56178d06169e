// Portcullis admin console: the admin API (/admin/v1, docs/api.md) in a page.
//
// The administrator signs in with the password grant of the console's own
// public client (config.json), asking for the scope portcullis:admin. The
// access token stays in a variable of this script: no storage API, no
// cookie, no refresh token. When it expires (or is revoked), the console
// asks for the password again.
//
// Everything from the server is put in the page with textContent, never as
// HTML.
"use strict";

(() => {
  const SCOPE = "portcullis:admin";

  let clientId = null;
  let token = null; // memory only
  let expiresAt = 0;
  let expiryTimer = null;
  let clients = [];
  let users = [];
  let usersComplete = false;
  let auditBefore = []; // stack of `before` cursors: [] is the newest page
  const PAGE = 100;

  const $ = (id) => document.getElementById(id);

  /// An element with attributes and children (strings become text nodes).
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) e.append(c === null || c === undefined ? "" : c);
    return e;
  }

  const when = (secs) => (secs ? new Date(secs * 1000).toLocaleString() : "–");

  /// A <time>: the moment in the admin's locale and time zone, its UTC
  /// value (RFC 3339) on hover and in `datetime`.
  function time(secs, format = when) {
    if (!secs) return "–";
    const utc = new Date(secs * 1000).toISOString().replace(".000Z", "Z");
    return el("time", { datetime: utc, title: `${utc} (UTC)` }, format(secs));
  }

  const clock = (secs) => new Date(secs * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  /// A client's type: `web` (a browser app, with origins), `public` (no
  /// secret) or `confidential` (a server-side app with a secret).
  const clientType = (c) =>
    c.web_origins && c.web_origins.length ? "web" : c.token_endpoint_auth_method === "none" ? "public" : "confidential";

  /// The readable label of each field of a client.
  const CLIENT_FIELDS = {
    client_id: "Client id",
    client_name: "Name",
    type: "Type",
    grant_types: "Grant types",
    scope: "Scopes it may request",
    default_scope: "Default scopes",
    token_endpoint_auth_method: "Authenticates with",
    introspect: "May introspect tokens",
    web_origins: "Web origins",
    dpop_bound_access_tokens: "Requires DPoP",
    dpop_nonce_required: "Requires DPoP nonces",
    first_party: "First-party app",
    mfa_required: "Requires a second factor",
    refresh_cookie: "Refresh cookie",
    status: "Status",
    created_at: "Created",
  };

  const AUTH_METHODS = {
    none: "its client id only (public)",
    client_secret_basic: "a secret (HTTP Basic or the request body)",
    client_secret_post: "a secret in the request body",
  };

  function status(text, kind = "info") {
    const s = $("status");
    s.textContent = text;
    s.dataset.kind = kind;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.error_description || body.error)) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.error) || null;
      // The password was right and the account has a second factor.
      this.mfaRequired = Boolean(body && body.mfa_required);
    }
  }

  // ---- Session ----

  async function signIn(username, password, otp) {
    const params = {
      grant_type: "password",
      client_id: clientId,
      username,
      password,
      scope: SCOPE,
      device_name: "Admin console",
    };
    if (otp) params.otp = otp;
    const res = await fetch("../oauth/token", {
      method: "POST",
      body: new URLSearchParams(params),
      cache: "no-store",
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body);
    token = body.access_token;
    expiresAt = Date.now() + body.expires_in * 1000;
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => ended("Your session expired; sign in again."), body.expires_in * 1000);
    $("whoami").textContent = username;
    $("session-end").textContent = new Date(expiresAt).toLocaleTimeString();
  }

  function forget() {
    token = null;
    expiresAt = 0;
    clearTimeout(expiryTimer);
    clients = [];
    users = [];
    for (const id of ["clients-table", "users-table", "devices-table", "keys-table", "audit-table"]) {
      $(id).tBodies[0].replaceChildren();
    }
    $("client-detail").hidden = true;
    $("devices").hidden = true;
    dropQr();
    $("mfa-enrol").hidden = true;
    $("mfa-recovery").hidden = true;
    $("mfa-recovery-codes").replaceChildren();
  }

  function showSignIn() {
    document.body.dataset.state = "signed-out";
    $("console").hidden = true;
    $("session").hidden = true;
    $("sign-in").hidden = false;
  }

  /// The token is gone (expired, revoked, the user disabled): back to the form.
  function ended(message) {
    forget();
    showSignIn();
    status(message, "error");
    $("sign-in-heading").focus();
  }

  async function onSignOut() {
    const old = token;
    forget();
    showSignIn();
    status("Signed out.", "ok");
    $("sign-in-heading").focus();
    // Best effort: revoke the access token so it is refused at once.
    await fetch("../oauth/revoke", {
      method: "POST",
      body: new URLSearchParams({ token: old, client_id: clientId, token_type_hint: "access_token" }),
    }).catch(() => {});
  }

  /// A call to the admin API, with an optional JSON body. A 401 ends the
  /// session (there is no refresh).
  async function call(base, method, path, json) {
    if (!token) throw new ApiError(401, null);
    const headers = { Authorization: `Bearer ${token}` };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: "no-store",
    });
    const body = await res.json().catch(() => null);
    if (res.status === 401) {
      ended("Your session has ended (expired or revoked); sign in again.");
      throw new ApiError(401, body);
    }
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }

  /// The admin API.
  const api = (method, path, json) => call("../admin/v1", method, path, json);
  /// The account API, for the admin's own account.
  const accountApi = (method, path, json) => call("../account/v1", method, path, json);

  /// Runs an action, reporting failures in the status line.
  async function attempt(what, f) {
    try {
      return await f();
    } catch (e) {
      if (e.status === 401) return undefined; // already reported
      const why = e.status === 403 ? "this account lacks the portcullis:admin scope" : e.message;
      status(`${what} failed: ${why}.`, "error");
      return undefined;
    }
  }

  // ---- Views ----

  const views = ["clients", "users", "keys", "audit", "account"];
  const loaders = {
    clients: loadClients,
    users: loadUsers,
    keys: loadKeys,
    audit: () => loadAudit([]),
    account: loadAccount,
  };

  async function showView(name, focus = true) {
    for (const v of views) $(`view-${v}`).hidden = v !== name;
    for (const b of document.querySelectorAll("nav [data-view]")) {
      if (b.dataset.view === name) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
    if (focus) $(`${name}-heading`).focus();
    await loaders[name]();
  }

  // Clients

  async function loadClients() {
    const body = await attempt("Loading clients", () => api("GET", "/clients"));
    if (!body) return;
    clients = body.clients;
    renderClients();
  }

  function matches(query, ...fields) {
    const q = query.trim().toLowerCase();
    return !q || fields.some((f) => String(f ?? "").toLowerCase().includes(q));
  }

  function renderClients() {
    const q = $("clients-filter").value;
    const shown = clients.filter((c) => matches(q, c.client_id, c.client_name, c.scope, c.status, clientType(c)));
    $("clients-table").tBodies[0].replaceChildren(
      ...shown.map((c) =>
        el(
          "tr",
          { "data-client-id": c.client_id, "data-status": c.status },
          el("td", { class: "id" }, c.client_id),
          el("td", {}, c.client_name),
          el("td", { "data-testid": "client-type" }, clientType(c)),
          el("td", {}, c.grant_types.join(" ")),
          el("td", {}, c.scope),
          el("td", { "data-testid": "client-status" }, c.status),
          el("td", { class: "when" }, time(c.created_at)),
          el(
            "td",
            { class: "actions" },
            el("button", { type: "button", "aria-label": `Show ${c.client_id}`, onclick: () => showClient(c.client_id) }, "Show"),
            c.status === "revoked"
              ? null
              : el(
                  "button",
                  {
                    type: "button",
                    "aria-label": `Revoke ${c.client_id}`,
                    "data-testid": "revoke-client",
                    onclick: () => revokeClient(c.client_id),
                  },
                  "Revoke",
                ),
          ),
        ),
      ),
    );
    $("clients-caption").textContent = `Registered clients (${shown.length} of ${clients.length})`;
  }

  async function showClient(id, focus = true) {
    const c = await attempt(`Loading client ${id}`, () => api("GET", `/clients/${encodeURIComponent(id)}`));
    if (!c) return;
    $("client-detail-heading").textContent = `Client ${c.client_name} (${c.client_id})`;
    const facts = Object.entries(c);
    facts.splice(2, 0, ["type", clientType(c)]);
    // A web client keeps its users' refresh tokens in a cookie of its own
    // (docs/web.md): name it, so an admin can find it in a browser.
    if (c.web_origins.length > 0) facts.push(["refresh_cookie", `__Host-portcullis-refresh-${c.client_id}`]);
    const show = (k, v) => {
      if (k === "created_at") return time(v);
      if (k === "token_endpoint_auth_method") return AUTH_METHODS[v] || v;
      if (typeof v === "boolean") return v ? "yes" : "no";
      if (Array.isArray(v)) return v.length ? v.join(" ") : "–";
      return v === "" ? "–" : String(v);
    };
    $("client-detail-facts").replaceChildren(
      ...facts.flatMap(([k, v]) => [
        el("dt", { title: k }, CLIENT_FIELDS[k] || k),
        el("dd", { "data-fact": k }, show(k, v)),
      ]),
    );
    $("client-detail").hidden = false;
    $("client-detail").dataset.clientId = c.client_id;
    if (focus) $("client-detail-heading").focus();
  }

  async function revokeClient(id) {
    if (!confirm(`Revoke the client ${id}? It gets no new tokens and every sign-in through it ends. This cannot be undone.`)) {
      status(`Client ${id} not revoked.`);
      return;
    }
    const r = await attempt(`Revoking ${id}`, () => api("POST", `/clients/${encodeURIComponent(id)}/revoke`));
    if (!r) return;
    status(`Client ${id} revoked; ${r.sign_ins_ended} sign-in(s) ended.`, "ok");
    await loadClients();
    if (!$("client-detail").hidden && $("client-detail").dataset.clientId === id) await showClient(id, false);
    $("clients-heading").focus();
  }

  // Your account: the admin's own second factor, through the account API.

  /// The object URL of the QR code on show, if any.
  let qrUrl = null;

  function dropQr() {
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = null;
    $("mfa-qr").removeAttribute("src");
    $("mfa-secret").textContent = "";
  }

  async function loadAccount() {
    const m = await attempt("Loading your second factor", () => accountApi("GET", "/mfa"));
    if (!m) return;
    const on = m.totp === "enrolled";
    $("mfa-state").textContent = on
      ? `An authenticator app is set up; ${m.recovery_codes_left} recovery code(s) left.`
      : "No second factor: signing in needs only the password.";
    $("mfa-start").hidden = on;
  }

  async function onMfaStart() {
    const e = await attempt("Starting the set-up", () => accountApi("POST", "/mfa/totp"));
    if (!e) return;
    dropQr();
    // The server's SVG, shown as an image (it cannot run script there).
    qrUrl = URL.createObjectURL(new Blob([e.qr_svg], { type: "image/svg+xml" }));
    $("mfa-qr").src = qrUrl;
    $("mfa-secret").textContent = e.secret;
    $("mfa-recovery").hidden = true;
    $("mfa-enrol").hidden = false;
    $("mfa-code").value = "";
    $("mfa-enrol-heading").focus();
  }

  async function onMfaConfirm(event) {
    event.preventDefault();
    const code = $("mfa-code").value.trim();
    if (!code) {
      status("Enter the code the app shows.", "error");
      $("mfa-code").focus();
      return;
    }
    const r = await attempt("Turning on the authenticator", () => accountApi("POST", "/mfa/totp/confirm", { code }));
    $("mfa-code").value = "";
    if (!r) {
      $("mfa-code").focus();
      return;
    }
    dropQr();
    $("mfa-enrol").hidden = true;
    $("mfa-recovery-codes").replaceChildren(...r.recovery_codes.map((c) => el("li", {}, el("code", {}, c))));
    $("mfa-recovery").hidden = false;
    status("Authenticator app set up: every sign-in now asks for a code.", "ok");
    await loadAccount();
    $("mfa-recovery-heading").focus();
  }

  function onRecoveryDone() {
    $("mfa-recovery-codes").replaceChildren();
    $("mfa-recovery").hidden = true;
    $("account-heading").focus();
  }

  // Users

  async function loadUsers(more = false) {
    const after = more && users.length ? `&after=${encodeURIComponent(users[users.length - 1].username)}` : "";
    const body = await attempt("Loading users", () => api("GET", `/users?limit=${PAGE}${after}`));
    if (!body) return;
    users = more ? users.concat(body.users) : body.users;
    usersComplete = body.users.length < PAGE;
    $("users-more").disabled = usersComplete;
    renderUsers();
  }

  function renderUsers() {
    const q = $("users-filter").value;
    const shown = users.filter((u) => matches(q, u.username, u.id, u.scope, u.status));
    $("users-table").tBodies[0].replaceChildren(
      ...shown.map((u) =>
        el(
          "tr",
          { "data-username": u.username, "data-status": u.status },
          el("td", {}, u.username),
          el("td", { class: "id" }, u.id),
          el("td", {}, u.scope),
          el("td", { "data-testid": "user-status" }, u.status),
          el("td", { class: "when" }, time(u.created_at)),
          el(
            "td",
            { class: "actions" },
            el("button", { type: "button", "aria-label": `Devices of ${u.username}`, onclick: () => showDevices(u.username) }, "Devices"),
            u.status === "disabled"
              ? null
              : el(
                  "button",
                  { type: "button", "aria-label": `Disable ${u.username}`, onclick: () => disableUser(u.username) },
                  "Disable",
                ),
          ),
        ),
      ),
    );
    const more = usersComplete ? "" : ", more to load";
    $("users-caption").textContent = `Users (${shown.length} of ${users.length} loaded${more})`;
  }

  async function disableUser(username) {
    if (!confirm(`Disable ${username}? Sign-in is refused and every sign-in of theirs ends.`)) {
      status(`${username} not disabled.`);
      return;
    }
    const r = await attempt(`Disabling ${username}`, () => api("POST", `/users/${encodeURIComponent(username)}/disable`));
    if (!r) return;
    status(`${username} disabled; ${r.sign_ins_ended} sign-in(s) ended.`, "ok");
    await loadUsers();
    $("users-heading").focus();
  }

  /// The name of the client `id` (its id when unknown).
  const clientName = (id) => {
    const c = clients.find((x) => x.client_id === id);
    return c ? c.client_name : id;
  };

  async function showDevices(username) {
    const path = `/users/${encodeURIComponent(username)}/devices`;
    // The clients' names, for the devices' Client column.
    if (!clients.length) await loadClients();
    const body = await attempt(`Loading the devices of ${username}`, () => api("GET", path));
    if (!body) return;
    $("devices-heading").textContent = `Devices of ${username} (${body.devices.length})`;
    $("devices-table").tBodies[0].replaceChildren(
      ...body.devices.map((d) =>
        el(
          "tr",
          { "data-device-id": d.id },
          el("td", { "data-testid": "device-name" }, d.device_name || "(unnamed device)"),
          el("td", { "data-testid": "device-client", title: d.client_id }, clientName(d.client_id)),
          el("td", {}, d.scope),
          el("td", { class: "when" }, time(d.created_at)),
          el("td", { class: "when" }, time(d.last_used_at)),
          el("td", { class: "when" }, time(d.expires_at)),
          el(
            "td",
            { class: "actions" },
            el(
              "button",
              {
                type: "button",
                "aria-label": `Sign out ${d.device_name || d.id}`,
                onclick: () => signOutDevice(username, d),
              },
              "Sign out",
            ),
          ),
        ),
      ),
    );
    $("devices").hidden = false;
    $("devices-heading").focus();
  }

  async function signOutDevice(username, d) {
    const name = d.device_name || d.id;
    if (!confirm(`Sign ${username} out of ${name}?`)) return;
    const path = `/users/${encodeURIComponent(username)}/devices/${encodeURIComponent(d.id)}`;
    const r = await attempt(`Signing out ${name}`, () => api("DELETE", path));
    if (!r) return;
    status(r.signed_out ? `${username} signed out of ${name}.` : `${name} was already signed out.`, "ok");
    if (token) await showDevices(username);
  }

  // Keys

  async function loadKeys() {
    const body = await attempt("Loading keys", () => api("GET", "/keys"));
    if (!body) return;
    const keys = [...body.keys].sort((a, b) => b.created_at - a.created_at);
    $("keys-table").tBodies[0].replaceChildren(
      ...keys.map((k) =>
        el(
          "tr",
          { "data-kid": k.kid, "data-state": k.state, "data-phase": k.phase },
          el("td", { class: "id" }, k.kid),
          el("td", {}, k.alg),
          el("td", { "data-testid": "key-phase" }, keyPhase(k)),
          el("td", { class: "when" }, time(k.created_at)),
          el("td", { class: "when" }, time(k.retired_at)),
        ),
      ),
    );
  }

  /// What a key does now, in words: it is published and signs from a
  /// time, signs, is retiring (still published for the tokens it signed)
  /// until about a time, or is retired.
  function keyPhase(k) {
    switch (k.phase) {
      case "published":
        return el("span", {}, "published, signs from ", time(k.signs_from, clock));
      case "signing":
        return "signing";
      case "retiring":
        return el("span", {}, "retiring until ", time(k.retiring_until, clock));
      default:
        return "retired";
    }
  }

  async function onRotate(event) {
    event.preventDefault();
    const alg = $("rotate-alg").value;
    if (!confirm("Create a new signing key? It is published now and used after the publication delay.")) return;
    const query = alg ? `?alg=${encodeURIComponent(alg)}` : "";
    const k = await attempt("Rotating keys", () => api("POST", `/keys/rotate${query}`));
    if (!k) return;
    status(`New ${k.alg} key ${k.kid}: published, signs from ${clock(k.signs_from)}.`, "ok");
    await loadKeys();
  }

  // Audit log

  async function loadAudit(stack) {
    const before = stack.length ? `&before=${stack[stack.length - 1]}` : "";
    const body = await attempt("Loading the audit log", () => api("GET", `/audit?limit=${PAGE}${before}`));
    if (!body) return;
    auditBefore = stack;
    const events = body.events;
    $("audit-table").tBodies[0].replaceChildren(
      ...events.map((e) =>
        el(
          "tr",
          { "data-event-id": e.id },
          el("td", {}, String(e.id)),
          el("td", { class: "when" }, time(e.at)),
          el("td", {}, e.action),
          named(e.actor_name, e.actor, "audit-actor"),
          named(e.client_name, e.client_id, "audit-client"),
          subjectCell(e),
          el("td", {}, e.ip ?? "–"),
        ),
      ),
    );
    const last = events.length ? events[events.length - 1].id : null;
    $("audit-older").disabled = events.length < PAGE;
    $("audit-older").dataset.before = last ?? "";
    $("audit-newest").disabled = stack.length === 0;
    $("audit-page").textContent = events.length
      ? `Events ${events[0].id} to ${last}${stack.length ? "" : " (newest)"}.`
      : "No events.";
  }

  /// A cell with a name (the id on hover), or the bare id when the name
  /// is unknown.
  function named(name, id, testid) {
    if (!id) return el("td", { "data-testid": testid }, "–");
    if (!name) return el("td", { class: "id", "data-testid": testid }, id);
    return el("td", { title: id, "data-testid": testid }, name);
  }

  /// The subject: its kind, labelled, then its name or id.
  function subjectCell(e) {
    if (!e.subject) return el("td", { "data-testid": "audit-subject" }, "–");
    const kind = e.subject_kind ? el("span", { class: "kind" }, e.subject_kind) : null;
    const what = e.subject_name
      ? el("span", { title: e.subject }, e.subject_name)
      : el("span", { class: "id" }, e.subject);
    return el("td", { "data-testid": "audit-subject" }, kind, kind ? " " : null, what);
  }

  // The create, edit and delete forms (forms.js) act through these.
  window.portcullisConsole = Object.freeze({
    api,
    attempt,
    status,
    reloadClients: loadClients,
    reloadUsers: () => loadUsers(false),
    showClient,
  });

  // ---- Start ----

  async function onSignIn(event) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) {
      status("Enter a username and a password.", "error");
      (username ? $("password") : $("username")).focus();
      return;
    }
    const otp = $("otp-field").hidden ? "" : $("otp").value.trim();
    $("sign-in-button").disabled = true;
    status("Signing in…");
    try {
      await signIn(username, password, otp);
      $("password").value = "";
      $("otp").value = "";
      $("otp-field").hidden = true;
      document.body.dataset.state = "signed-in";
      $("sign-in").hidden = true;
      $("session").hidden = false;
      $("console").hidden = false;
      status(`Signed in as ${username}.`, "ok");
      await showView("clients");
    } catch (e) {
      if (e.mfaRequired) {
        // Keep the password: the next try sends it again with the code.
        $("otp-field").hidden = false;
        $("otp").value = "";
        status(
          otp
            ? "That code is wrong or was used already; enter a new one."
            : "Enter the code from your authenticator app (or a recovery code).",
          "error",
        );
        $("otp").focus();
        return;
      }
      const why = {
        invalid_grant: "Wrong username or password.",
        invalid_scope: "This account is not an administrator (no portcullis:admin scope).",
        invalid_client: `The console's client ${clientId} is not registered (see docs/web.md).`,
        unauthorized_client: `The console's client ${clientId} may not use the password grant.`,
      }[e.code];
      status(why || `Sign-in failed: ${e.message}.`, "error");
      $("password").focus();
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  async function start() {
    $("sign-in-form").addEventListener("submit", onSignIn);
    $("mfa-start").addEventListener("click", onMfaStart);
    $("mfa-confirm-form").addEventListener("submit", onMfaConfirm);
    $("mfa-recovery-done").addEventListener("click", onRecoveryDone);
    $("sign-out").addEventListener("click", onSignOut);
    for (const b of document.querySelectorAll("nav [data-view]")) {
      b.addEventListener("click", () => showView(b.dataset.view));
    }
    $("clients-filter").addEventListener("input", renderClients);
    $("clients-reload").addEventListener("click", loadClients);
    $("users-filter").addEventListener("input", renderUsers);
    $("users-reload").addEventListener("click", () => loadUsers(false));
    $("users-more").addEventListener("click", () => loadUsers(true));
    $("rotate-form").addEventListener("submit", onRotate);
    $("audit-newest").addEventListener("click", () => loadAudit([]));
    $("audit-older").addEventListener("click", () =>
      loadAudit(auditBefore.concat([Number($("audit-older").dataset.before)])),
    );
    try {
      clientId = (await (await fetch("config.json", { cache: "no-store" })).json()).client_id;
    } catch (e) {
      status("Cannot load config.json.", "error");
      return;
    }
    showSignIn();
    status("Not signed in.");
    $("username").focus();
  }

  start();
})();
