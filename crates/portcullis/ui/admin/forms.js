// Portcullis admin console: the forms that create, change and delete
// clients and users (POST/PATCH/DELETE /admin/v1/..., docs/api.md). The
// lists and the session live in admin.js, which hands over its API call
// (window.portcullisConsole); this file only adds forms.
//
// Everything from the server is put in the page with textContent or
// input values, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const words = (text) => text.split(/\s+/).filter(Boolean);
  const path = (kind, name) => `/${kind}/${encodeURIComponent(name)}`;
  let con = null; // window.portcullisConsole, once admin.js has run

  function show(section, heading) {
    $(section).hidden = false;
    $(heading).focus();
  }

  // ---- Clients ----

  let editing = null; // the client id being edited, or null for a new one

  function clientForm(client) {
    editing = client ? client.client_id : null;
    $("client-form").reset();
    $("client-form-heading").textContent = client ? `Edit client ${client.client_id}` : "New client";
    $("client-form-submit").textContent = client ? "Save changes" : "Create client";
    $("client-form-id-row").hidden = Boolean(client);
    $("cf-type-row").hidden = Boolean(client);
    if (client) {
      $("cf-name").value = client.client_name;
      for (const box of document.querySelectorAll('#client-form input[name="grant"]')) {
        box.checked = client.grant_types.includes(box.value);
      }
      $("cf-scope").value = client.scope;
      $("cf-default-scope").value = client.default_scope;
      $("cf-origins").value = client.web_origins.join(" ");
      $("cf-introspect").checked = client.introspect;
      $("cf-sign-up").checked = client.allow_sign_up;
      $("cf-sign-up-scope").value = client.sign_up_scope;
      $("cf-dpop").checked = client.dpop_bound_access_tokens;
      $("cf-dpop-nonce").checked = client.dpop_nonce_required;
      $("cf-first-party").checked = client.first_party;
      $("cf-mfa-required").checked = client.mfa_required;
    }
    show("client-form-section", "client-form-heading");
  }

  function showSecret(id, secret, note) {
    $("client-secret-id").textContent = id;
    $("client-secret-value").value = secret;
    $("client-secret-value").textContent = secret;
    con.status(note, "ok");
    show("client-secret", "client-secret-heading");
  }

  async function onClientSubmit(event) {
    event.preventDefault();
    const name = $("cf-name").value.trim();
    if (!name) {
      con.status("Give the client a name.", "error");
      $("cf-name").focus();
      return;
    }
    const grants = [...document.querySelectorAll('#client-form input[name="grant"]:checked')].map((b) => b.value);
    const body = {
      client_name: name,
      grant_types: grants,
      scope: $("cf-scope").value.trim(),
      introspect: $("cf-introspect").checked,
      web_origins: words($("cf-origins").value),
      allow_sign_up: $("cf-sign-up").checked,
      sign_up_scope: $("cf-sign-up-scope").value.trim(),
      dpop_bound_access_tokens: $("cf-dpop").checked,
      dpop_nonce_required: $("cf-dpop-nonce").checked,
      first_party: $("cf-first-party").checked,
      mfa_required: $("cf-mfa-required").checked,
    };
    const defaultScope = $("cf-default-scope").value.trim();
    if (defaultScope || editing) body.default_scope = defaultScope;
    if (editing) {
      const id = editing;
      const c = await con.attempt(`Changing ${id}`, () => con.api("PATCH", path("clients", id), body));
      if (!c) return;
      $("client-form-section").hidden = true;
      con.status(`Client ${id} changed.`, "ok");
      await con.reloadClients();
      await con.showClient(id);
      return;
    }
    const id = $("cf-id").value.trim();
    if (id) body.client_id = id;
    body.token_endpoint_auth_method = document.querySelector('input[name="cf-type"]:checked').value;
    if (body.web_origins.length) body.token_endpoint_auth_method = "none";
    const c = await con.attempt("Creating the client", () => con.api("POST", "/clients", body));
    if (!c) return;
    $("client-form-section").hidden = true;
    await con.reloadClients();
    if (c.client_secret) showSecret(c.client_id, c.client_secret, `Client ${c.client_id} created; copy its secret now.`);
    else {
      con.status(`Public client ${c.client_id} created.`, "ok");
      await con.showClient(c.client_id);
    }
  }

  async function onClientEdit() {
    const id = $("client-detail").dataset.clientId;
    const c = await con.attempt(`Loading ${id}`, () => con.api("GET", path("clients", id)));
    if (!c) return;
    if (c.status === "revoked") {
      con.status(`Client ${id} is revoked; revocation is final, so it cannot be changed.`, "error");
      return;
    }
    clientForm(c);
  }

  async function onRotate() {
    const id = $("client-detail").dataset.clientId;
    const grace = Number($("client-rotate-grace").value);
    const when = grace ? "keeps working for the grace period" : "stops working at once";
    if (!confirm(`Give ${id} a new secret? The old one ${when}.`)) return;
    const r = await con.attempt(`Rotating the secret of ${id}`, () =>
      con.api("POST", `${path("clients", id)}/secret`, { grace_period: grace }),
    );
    if (!r) return;
    showSecret(id, r.client_secret, `New secret for ${id}; the old one ${when}.`);
  }

  async function onCopy() {
    const secret = $("client-secret-value").value;
    try {
      await navigator.clipboard.writeText(secret);
      con.status("Secret copied to the clipboard.", "ok");
    } catch (e) {
      // No clipboard permission: select the text for a manual copy.
      const range = document.createRange();
      range.selectNodeContents($("client-secret-value"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      con.status("Could not copy; the secret is selected: press Ctrl+C (or Cmd+C).", "error");
    }
  }

  function onSecretDone() {
    $("client-secret-value").value = "";
    $("client-secret-value").textContent = "";
    $("client-secret").hidden = true;
    $("clients-heading").focus();
  }

  // ---- Users ----

  let editingUser = null;

  function userForm(user) {
    editingUser = user ? user.username : null;
    $("user-form").reset();
    $("user-form-heading").textContent = user ? `Edit ${user.username}` : "New user";
    $("user-form-submit").textContent = user ? "Save changes" : "Create user";
    $("uf-username-row").hidden = Boolean(user);
    $("uf-password-row").hidden = Boolean(user);
    // GET /admin/v1/users/{name} says where the user's second factor is.
    const mfa = user && user.mfa;
    $("uf-mfa").hidden = !mfa;
    if (mfa) {
      const state = {
        enrolled: "an authenticator app",
        pending: "none (an authenticator app's set-up was started, not confirmed)",
        none: "none",
      }[mfa.totp] ?? mfa.totp;
      $("uf-mfa").textContent = `Second factor: ${state}; ${mfa.recovery_codes_left} recovery code(s) left.`;
    }
    if (user) {
      $("uf-email").value = user.email ?? "";
      $("uf-email-verified").checked = user.email_verified;
      $("uf-scope").value = words(user.scope).filter((s) => s !== "portcullis:admin").join(" ");
      $("uf-admin").checked = words(user.scope).includes("portcullis:admin");
    }
    show("user-form-section", "user-form-heading");
  }

  async function onUserSubmit(event) {
    event.preventDefault();
    const email = $("uf-email").value.trim();
    const body = {
      scope: $("uf-scope").value.trim(),
      admin: $("uf-admin").checked,
      email_verified: $("uf-email-verified").checked,
    };
    if (editingUser) {
      const name = editingUser;
      body.email = email || null;
      const u = await con.attempt(`Changing ${name}`, () => con.api("PATCH", path("users", name), body));
      if (!u) return;
      $("user-form-section").hidden = true;
      con.status(`${u.username} changed.`, "ok");
      await con.reloadUsers();
      $("users-heading").focus();
      return;
    }
    const username = $("uf-username").value.trim();
    if (!username) {
      con.status("Enter a username.", "error");
      $("uf-username").focus();
      return;
    }
    body.username = username;
    if (email) body.email = email;
    const password = $("uf-password").value;
    if (password) body.password = password;
    const u = await con.attempt(`Creating ${username}`, () => con.api("POST", "/users", body));
    $("uf-password").value = "";
    if (!u) return;
    $("user-form-section").hidden = true;
    const note = u.has_password ? "" : " They cannot sign in until a password is set.";
    con.status(`User ${u.username} created.${note}`, "ok");
    await con.reloadUsers();
    $("um-username").value = u.username;
    $("users-heading").focus();
  }

  const picked = () => $("um-username").value.trim();

  async function onPick(event) {
    event.preventDefault();
    const name = picked();
    if (!name) return;
    const u = await con.attempt(`Loading ${name}`, () => con.api("GET", path("users", name)));
    if (u) userForm(u);
  }

  async function onEnable() {
    const name = picked();
    if (!name) return;
    const u = await con.attempt(`Enabling ${name}`, () => con.api("POST", `${path("users", name)}/enable`));
    if (!u) return;
    con.status(`${u.username} is active: they may sign in again.`, "ok");
    await con.reloadUsers();
  }

  async function onSetPassword(event) {
    event.preventDefault();
    const name = picked();
    const password = $("um-password").value;
    if (!name || !password) {
      con.status("Enter the username and the new password.", "error");
      return;
    }
    const r = await con.attempt(`Setting the password of ${name}`, () =>
      con.api("POST", `${path("users", name)}/password`, { password }),
    );
    $("um-password").value = "";
    if (!r) return;
    con.status(`Password of ${r.username} set; ${r.sign_ins_ended} sign-in(s) ended.`, "ok");
  }

  async function onMfaReset(event) {
    event.preventDefault();
    const name = picked();
    if (!name) {
      con.status("Enter the username of the user to manage.", "error");
      return;
    }
    const question = `Reset the second factor of ${name}? Every sign-in of theirs ends; they sign in with the password alone until they set up a new authenticator.`;
    if (!confirm(question)) return;
    const r = await con.attempt(`Resetting the second factor of ${name}`, () =>
      con.api("DELETE", `${path("users", name)}/mfa`),
    );
    if (!r) return;
    con.status(`Second factor of ${r.username} reset; ${r.sign_ins_ended} sign-in(s) ended.`, "ok");
  }

  function onDeleteTyping() {
    $("um-delete").disabled = !picked() || $("um-delete-confirm").value !== picked();
  }

  async function onDelete(event) {
    event.preventDefault();
    const name = picked();
    if (!name || $("um-delete-confirm").value !== name) {
      con.status("Type the username exactly to confirm the deletion.", "error");
      return;
    }
    const r = await con.attempt(`Deleting ${name}`, () => con.api("DELETE", path("users", name)));
    if (!r) return;
    $("um-delete-confirm").value = "";
    $("um-username").value = "";
    onDeleteTyping();
    con.status(`User ${r.username} deleted; ${r.sign_ins_ended} sign-in(s) ended.`, "ok");
    await con.reloadUsers();
    $("users-heading").focus();
  }

  /// A click on a user's row picks that user for the manage forms.
  function onUserRow(event) {
    const row = event.target.closest("tr[data-username]");
    if (!row) return;
    $("um-username").value = row.dataset.username;
    onDeleteTyping();
  }

  function start() {
    con = window.portcullisConsole;
    if (!con) return;
    $("client-new").addEventListener("click", () => clientForm(null));
    $("client-form").addEventListener("submit", onClientSubmit);
    $("client-form-cancel").addEventListener("click", () => {
      $("client-form-section").hidden = true;
      $("clients-heading").focus();
    });
    $("client-edit-open").addEventListener("click", onClientEdit);
    $("client-rotate").addEventListener("click", onRotate);
    $("client-secret-copy").addEventListener("click", onCopy);
    $("client-secret-done").addEventListener("click", onSecretDone);
    $("user-new").addEventListener("click", () => userForm(null));
    $("user-form").addEventListener("submit", onUserSubmit);
    $("user-form-cancel").addEventListener("click", () => {
      $("user-form-section").hidden = true;
      $("users-heading").focus();
    });
    $("user-pick").addEventListener("submit", onPick);
    $("um-enable").addEventListener("click", onEnable);
    $("user-password-form").addEventListener("submit", onSetPassword);
    $("user-delete-form").addEventListener("submit", onDelete);
    $("user-mfa-reset-form").addEventListener("submit", onMfaReset);
    $("um-delete-confirm").addEventListener("input", onDeleteTyping);
    $("um-username").addEventListener("input", onDeleteTyping);
    $("users-table").addEventListener("click", onUserRow);
  }

  start();
})();
