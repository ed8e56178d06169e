// Portcullis sign-in demo: the reference for browser apps (docs/web.md).
//
// - The access token is kept in a variable of this script, never in
//   localStorage, sessionStorage or a cookie: an XSS payload that can read
//   storage would walk away with it.
// - The refresh token is an HttpOnly cookie set by the server, one per
//   client (__Host-portcullis-refresh-<client_id>), so other apps on the
//   same server keep their own sign-ins; this script never sees it. The
//   browser sends it with POST /web/refresh and /web/sign-out because of
//   `credentials: "include"`, and the server reads only this client's.
// - Every /web/* request carries `X-Portcullis-CSRF: 1`: a custom header
//   that a cross-site form cannot send, and that makes a cross-origin fetch
//   preflight, so only registered origins get through.
// - DPoP (RFC 9449): the page holds a P-256 key that scripts cannot read
//   (WebCrypto, `extractable: false`, kept in IndexedDB) and signs a proof
//   with every request. The server binds the sign-in and every access
//   token to it: a copied cookie or access token is useless elsewhere.
"use strict";

(() => {
  // The authorization server. The demo is served by Portcullis itself, so
  // it is this page's origin (and path prefix, if any). An app on
  // https://app.example.com would write "https://auth.example.com".
  const AUTH = new URL("..", document.baseURI).href.replace(/\/$/, "");

  let clientId = null; // from config.json
  let accessToken = null; // memory only
  let expiresAt = 0; // ms since the epoch
  let refreshTimer = null;
  let refreshing = null; // the refresh in flight, shared by all callers
  let calls = 0;
  let refreshes = 0;
  let tokenType = "Bearer"; // "DPoP" once bound
  let dpopNonce = null; // the last DPoP-Nonce the server sent

  // ---- DPoP: the page's key and its proofs ----

  const b64url = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const b64json = (value) => b64url(new TextEncoder().encode(JSON.stringify(value)));

  /// The page's key pair for this client: made once, kept in IndexedDB
  /// (the private key cannot be exported, not even by this script).
  let dpopKey = null;
  async function key() {
    if (dpopKey) return dpopKey;
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open("portcullis-dpop", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("keys");
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const get = (name) =>
      new Promise((resolve, reject) => {
        const req = db.transaction("keys").objectStore("keys").get(name);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    let pair = await get(clientId);
    if (!pair) {
      pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
      await new Promise((resolve, reject) => {
        const tx = db.transaction("keys", "readwrite");
        tx.objectStore("keys").put(pair, clientId);
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
      });
    }
    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    dpopKey = { pair, jwk: { kty, crv, x, y } };
    return dpopKey;
  }

  /// A proof for one request (RFC 9449 §4.2): `ath` binds it to the access
  /// token sent with it.
  async function proof(method, url, token) {
    const { pair, jwk } = await key();
    const claims = {
      jti: b64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method,
      htu: url.split("?")[0],
      iat: Math.floor(Date.now() / 1000),
    };
    if (dpopNonce) claims.nonce = dpopNonce;
    if (token) claims.ath = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    const input = `${b64json({ typ: "dpop+jwt", alg: "ES256", jwk })}.${b64json(claims)}`;
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
    return `${input}.${b64url(signature)}`;
  }

  /// Sends a request with a fresh proof; once more with the server's nonce
  /// if it asks for one (`use_dpop_nonce`).
  async function withProof(send, method, url, token) {
    let res = await send(await proof(method, url, token));
    dpopNonce = res.headers.get("DPoP-Nonce") || dpopNonce;
    const asked =
      (res.status === 400 || res.status === 401) &&
      (res.headers.get("WWW-Authenticate") || "").includes("use_dpop_nonce");
    const body = res.status === 400 ? await res.clone().json().catch(() => null) : null;
    if (asked || (body && body.error === "use_dpop_nonce")) {
      res = await send(await proof(method, url, token));
      dpopNonce = res.headers.get("DPoP-Nonce") || dpopNonce;
    }
    return res;
  }

  const $ = (id) => document.getElementById(id);

  /// An error answered by the server (RFC 6749 §5.2 body), or a network failure.
  class AuthError extends Error {
    constructor(status, body, retryAfter) {
      super((body && body.error_description) || (body && body.error) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.error) || null;
      this.retryAfter = retryAfter;
      // The password was right and the account has a second factor: the
      // sign-in needs its code as `otp`.
      this.mfaRequired = Boolean(body && body.mfa_required);
    }
  }

  // ---- The calls to the authorization server ----

  /// POST one of /web/sign-in, /web/refresh, /web/sign-out.
  async function postWeb(path, params) {
    let res;
    try {
      const send = (dpop) =>
        fetch(AUTH + path, {
          method: "POST",
          // Send the refresh cookie, and accept the one set in the answer,
          // also when the server is on another origin of the same site.
          credentials: "include",
          // The CSRF defence, and the proof of the page's key; the body's
          // Content-Type is set by the browser
          // (application/x-www-form-urlencoded;charset=UTF-8).
          headers: { "X-Portcullis-CSRF": "1", DPoP: dpop },
          body: new URLSearchParams({ client_id: clientId, ...params }),
          cache: "no-store",
        });
      res = await withProof(send, "POST", AUTH + path);
    } catch (e) {
      throw new AuthError(0, { error: "network", error_description: "the server cannot be reached" });
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      throw new AuthError(res.status, body, Number(res.headers.get("Retry-After")) || null);
    }
    return body;
  }

  /// Keeps a fresh token response: the access token in memory, and a
  /// silent refresh scheduled shortly before it expires.
  function accept(tokens) {
    accessToken = tokens.access_token;
    tokenType = tokens.token_type;
    expiresAt = Date.now() + tokens.expires_in * 1000;
    // Refresh when a quarter of the lifetime is left (at most a minute
    // early), so a slow network or a sleeping tab still has slack.
    const lead = Math.min(60, tokens.expires_in / 4);
    schedule(Math.max(1, tokens.expires_in - lead));
  }

  function schedule(seconds) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(silentRefresh, seconds * 1000);
    $("next-refresh").textContent = new Date(Date.now() + seconds * 1000).toLocaleTimeString();
  }

  function forget() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    accessToken = null;
    expiresAt = 0;
  }

  /// One refresh at a time: callers that arrive while one is in flight
  /// share it. (Two concurrent refreshes would present the same cookie
  /// twice; the server tolerates that within its retry window, but there
  /// is no reason to rely on it.)
  function refresh() {
    if (!refreshing) {
      // Other tabs of the app share its cookie: the Web Locks API makes
      // their refreshes take turns, so each presents the newest cookie.
      // The lock is the client's: other apps' refreshes need not wait.
      const call = () => postWeb("/web/refresh", {});
      const lock = `portcullis-refresh:${clientId}`;
      const locked = navigator.locks ? navigator.locks.request(lock, call) : call();
      refreshing = locked
        .then((tokens) => {
          refreshes += 1;
          $("refreshes").textContent = String(refreshes);
          accept(tokens);
          return tokens;
        })
        .finally(() => {
          refreshing = null;
        });
    }
    return refreshing;
  }

  async function signIn(username, password, otp) {
    const params = otp ? { username, password, otp } : { username, password };
    const tokens = await postWeb("/web/sign-in", params);
    accept(tokens);
  }

  /// POST JSON to the account API's routes that need no token (sign-up,
  /// password reset).
  async function postAccount(path, body) {
    let res;
    try {
      res = await fetch(AUTH + "/account/v1" + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      throw new AuthError(0, { error: "network", error_description: "the server cannot be reached" });
    }
    const answer = await res.json().catch(() => null);
    if (!res.ok) {
      const err = new AuthError(res.status, answer, Number(res.headers.get("Retry-After")) || null);
      err.reason = (answer && answer.reason) || null;
      throw err;
    }
    return answer;
  }

  async function signOut() {
    forget();
    await postWeb("/web/sign-out", {});
  }

  /// A call to a protected API with the access token. On 401 (the token
  /// expired or was revoked), refresh once and try again.
  async function api(path) {
    // A bound token goes with the DPoP scheme and a proof for this call.
    const call = () =>
      tokenType === "DPoP"
        ? withProof(
            (dpop) =>
              fetch(AUTH + path, { headers: { Authorization: `DPoP ${accessToken}`, DPoP: dpop }, cache: "no-store" }),
            "GET",
            AUTH + path,
            accessToken,
          )
        : fetch(AUTH + path, { headers: { Authorization: `Bearer ${accessToken}` }, cache: "no-store" });
    if (!accessToken) await refresh();
    let res = await call();
    if (res.status === 401) {
      await refresh();
      res = await call();
    }
    calls += 1;
    $("calls").textContent = String(calls);
    if (!res.ok) throw new AuthError(res.status, await res.json().catch(() => null));
    return res.json();
  }

  // ---- The page ----

  function status(text, kind = "info") {
    const s = $("status");
    s.textContent = text;
    s.dataset.kind = kind;
  }

  function show(state) {
    document.body.dataset.state = state;
    for (const id of ["signed-out", "signed-in", "sign-up", "reset"]) $(id).hidden = state !== id;
  }

  /// What to tell the user about a failure.
  function explain(e) {
    if (e.status === 0) return "The server cannot be reached; try again.";
    if (e.mfaRequired) return "Enter the code from your authenticator app (or a recovery code).";
    if (e.code === "invalid_grant") return "Wrong username or password.";
    if (e.code === "invalid_client") return `The client ${clientId} is not registered as a web client, or was revoked.`;
    if (e.code === "access_denied") return "Refused: this page's origin is not registered for the client.";
    if (e.status === 429 || e.status === 503) {
      return `Too busy or too many attempts; try again in ${e.retryAfter || 5} seconds.`;
    }
    return `Failed: ${e.message}`;
  }

  async function showMe() {
    const me = await api("/account/v1/me");
    $("me-username").textContent = me.username;
    $("me-sub").textContent = me.sub;
    $("me-client").textContent = me.client_id;
    $("me-scope").textContent = me.scope || "(none)";
    $("me-exp").textContent = new Date(me.exp * 1000).toLocaleTimeString();
    $("me-token-type").textContent = tokenType === "DPoP" ? "DPoP (bound to this browser's key)" : "Bearer";
    $("me-amr").textContent = signedInWith(accessToken);
    return me;
  }

  /// How the user signed in, from the access token's `amr` claim (RFC
  /// 8176). The page only reads it for display: the API checks the token.
  function signedInWith(jwt) {
    let amr = [];
    try {
      const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      amr = JSON.parse(atob(payload)).amr || [];
    } catch (e) {
      return "unknown";
    }
    if (amr.includes("otp")) return "password and authenticator code";
    if (amr.includes("mfa")) return "password and recovery code";
    return "password";
  }

  /// The session is gone (signed out elsewhere, expired, revoked).
  function ended(message) {
    forget();
    show("signed-out");
    status(message, "error");
  }

  async function silentRefresh() {
    try {
      await refresh();
    } catch (e) {
      if (e.code === "invalid_grant" || e.code === "invalid_client") {
        ended("Your session has ended; sign in again.");
      } else if (Date.now() < expiresAt) {
        // A passing failure (network, 429, 503): try again while the
        // access token still works.
        schedule(Math.min(e.retryAfter || 5, Math.max(1, (expiresAt - Date.now()) / 2000)));
      } else {
        ended("Could not refresh the session; sign in again.");
      }
    }
  }

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
    $("sign-in").disabled = true;
    status("Signing in…");
    try {
      await signIn(username, password, otp);
      $("password").value = "";
      $("otp").value = "";
      $("otp-field").hidden = true;
      await showMe();
      show("signed-in");
      status(`Signed in as ${username}.`, "ok");
      $("signed-in-heading").focus();
    } catch (e) {
      forget();
      if (e.mfaRequired) {
        // Keep the password: the next try sends it again with the code.
        const wrong = Boolean(otp);
        $("otp-field").hidden = false;
        $("otp").value = "";
        status(wrong ? "That code is wrong or was used already; enter a new one." : explain(e), "error");
        $("otp").focus();
      } else {
        status(explain(e), "error");
        $("password").focus();
      }
    } finally {
      $("sign-in").disabled = false;
    }
  }

  /// What to tell the user about a refused sign-up or reset: the server's
  /// own sentence where it has one (a refused password, a taken name).
  function explainAccount(e) {
    if (e.status === 400 && e.reason === "invalid_code") return "That code is wrong or has expired.";
    if (e.code === "mail_not_configured") return "This server sends no mail, so passwords cannot be reset here.";
    if (e.status === 403) return "This app does not allow sign-up.";
    if ((e.status === 400 || e.status === 409) && e.message) return e.message;
    return explain(e);
  }

  async function onSignUp(event) {
    event.preventDefault();
    const username = $("new-username").value.trim();
    const password = $("new-password").value;
    const email = $("new-email").value.trim();
    $("sign-up-submit").disabled = true;
    status("Creating the account…");
    try {
      const body = { client_id: clientId, username, password };
      if (email) body.email = email;
      await postAccount("/sign-up", body);
      await signIn(username, password);
      $("new-password").value = "";
      await showMe();
      show("signed-in");
      status(`Account created; signed in as ${username}.`, "ok");
      $("signed-in-heading").focus();
    } catch (e) {
      forget();
      status(explainAccount(e), "error");
      (e.reason === "username_taken" ? $("new-username") : $("new-password")).focus();
    } finally {
      $("sign-up-submit").disabled = false;
    }
  }

  async function onResetRequest(event) {
    event.preventDefault();
    const username = $("reset-username").value.trim();
    if (!username) {
      status("Enter your username.", "error");
      $("reset-username").focus();
      return;
    }
    try {
      await postAccount("/password-reset", { client_id: clientId, username });
      // The same answer whether or not the account exists.
      status("If this account has a verified email address, a code is on its way.", "ok");
      $("reset-confirm-form").hidden = false;
      $("reset-code").focus();
    } catch (e) {
      status(explainAccount(e), "error");
    }
  }

  async function onResetConfirm(event) {
    event.preventDefault();
    const body = {
      client_id: clientId,
      username: $("reset-username").value.trim(),
      code: $("reset-code").value.trim(),
      password: $("reset-password").value,
    };
    $("reset-confirm").disabled = true;
    try {
      await postAccount("/password-reset/confirm", body);
      $("reset-password").value = "";
      $("reset-code").value = "";
      $("reset-confirm-form").hidden = true;
      $("username").value = body.username;
      show("signed-out");
      status("Password changed, and every device signed out. Sign in with the new password.", "ok");
      $("password").focus();
    } catch (e) {
      status(explainAccount(e), "error");
      (e.reason === "invalid_code" ? $("reset-code") : $("reset-password")).focus();
    } finally {
      $("reset-confirm").disabled = false;
    }
  }

  /// Switches to a form and focuses its heading.
  function goTo(state, heading) {
    show(state);
    status("");
    $(heading).focus();
  }

  async function onCallMe() {
    try {
      const me = await showMe();
      status(`Protected call succeeded for ${me.username}.`, "ok");
    } catch (e) {
      if (e.code === "invalid_grant" || e.status === 401) ended("Your session has ended; sign in again.");
      else status(explain(e), "error");
    }
  }

  async function onSignOut() {
    try {
      await signOut();
      status("Signed out.", "ok");
    } catch (e) {
      status(`Signed out here, but the server said: ${explain(e)}`, "error");
    }
    show("signed-out");
    $("sign-in-heading").focus();
  }

  async function start() {
    $("sign-in-form").addEventListener("submit", onSignIn);
    $("call-me").addEventListener("click", onCallMe);
    $("sign-out").addEventListener("click", onSignOut);
    $("sign-up-form").addEventListener("submit", onSignUp);
    $("reset-request-form").addEventListener("submit", onResetRequest);
    $("reset-confirm-form").addEventListener("submit", onResetConfirm);
    $("to-sign-up").addEventListener("click", () => goTo("sign-up", "sign-up-heading"));
    $("to-reset").addEventListener("click", () => goTo("reset", "reset-heading"));
    for (const back of document.querySelectorAll("button.back")) {
      back.addEventListener("click", () => goTo("signed-out", "sign-in-heading"));
    }
    try {
      const res = await fetch("config.json", { cache: "no-store" });
      clientId = (await res.json()).client_id;
    } catch (e) {
      status("Cannot load config.json.", "error");
      return;
    }
    // Resume a session from the refresh cookie, if there is one.
    try {
      await refresh();
      const me = await showMe();
      show("signed-in");
      status(`Welcome back, ${me.username}.`, "ok");
    } catch (e) {
      forget();
      show("signed-out");
      status(e.status === 0 ? explain(e) : "Not signed in.");
    }
  }

  start();
})();
