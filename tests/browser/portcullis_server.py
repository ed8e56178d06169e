"""A real Portcullis server for browser tests: the built binary on a free 127.0.0.1 port.

Builds nothing: runs $PORTCULLIS_BIN (run.sh builds it when it is missing, and always in CI).
Each server gets a temporary directory with a fresh SQLite database, and is set up through the
CLI as an operator would: the demo's web client, a second web client (a "notes" app on the same
origin), the admin console's client, a public client (a "phone"), the user alice and the
administrator root.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BINARY = Path(os.environ.get("PORTCULLIS_BIN", REPO_ROOT / "target" / "debug" / "portcullis"))

DEMO_CLIENT = "portcullis-demo"
NOTES_CLIENT = "notes-web"
CONSOLE_CLIENT = "portcullis-admin"
PHONE_CLIENT = "phone-app"
API_CLIENT = "api-introspect"
ALICE = ("alice", "alice-correct-horse-1")
ROOT = ("root", "root-battery-staple-2")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict


@dataclass
class Portcullis:
    base: str
    log: Path
    api_secret: str

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None) -> Answer:
        """One HTTP request from outside the browser (urllib); JSON answer."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                status, hdrs, raw = res.status, dict(res.headers), res.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, dict(e.headers), e.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        return Answer(status, hdrs, body)

    def me(self, access_token: str) -> Answer:
        return self.request("GET", "/account/v1/me", headers={"Authorization": f"Bearer {access_token}"})

    def introspect(self, token: str) -> dict:
        """RFC 7662 introspection by an API's confidential client: works for DPoP-bound tokens,
        which only their key's holder can present."""
        basic = base64.b64encode(f"{API_CLIENT}:{self.api_secret}".encode()).decode()
        answer = self.request("POST", "/oauth/introspect", {"token": token}, headers={"Authorization": f"Basic {basic}"})
        assert answer.status == 200, answer.body
        return answer.body

    def active(self, token: str) -> bool:
        return self.introspect(token)["active"] is True

    def password_grant(self, client_id: str, user: tuple[str, str], **extra) -> Answer:
        form = {"grant_type": "password", "client_id": client_id, "username": user[0], "password": user[1]}
        return self.request("POST", "/oauth/token", {**form, **extra})

    def web_sign_in(self, client_id: str, user: tuple[str, str]) -> Answer:
        """POST /web/sign-in as the demo page would, with its Origin and the CSRF header."""
        return self.request(
            "POST",
            "/web/sign-in",
            {"client_id": client_id, "username": user[0], "password": user[1]},
            headers={"Origin": self.base, "X-Portcullis-CSRF": "1"},
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment without PORTCULLIS_* variables: the harness's own (PORTCULLIS_BIN, …)
    would be warned about as unknown keys, and a developer's (PORTCULLIS_DATABASE_URL, …)
    must not reach the server under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}


def cli(db: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BINARY), "--database", db, *args], input=stdin, capture_output=True, text=True, timeout=60,
        env=clean_env(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"portcullis {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def running(access_token_ttl: int = 900, demo: bool = True, serve_args: tuple[str, ...] = (),
            setup=None):
    """Yield a Portcullis set up as described above; stop it afterwards. `serve_args` go to
    `serve`; `setup(db)` runs after the set-up, before the server starts."""
    if not os.access(BINARY, os.X_OK):
        raise RuntimeError(f"no portcullis binary at {BINARY} (run tests/browser/run.sh, which builds it)")
    with tempfile.TemporaryDirectory(prefix="portcullis-browser-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        db = f"sqlite://{tmp}/portcullis.db"
        cli(db, "migrate")
        cli(db, "client", "create", "--name", "Sign-in demo", "--client-id", DEMO_CLIENT,
            "--web", "--origin", base, "--scope", "read")  # fmt: skip
        cli(db, "client", "create", "--name", "Notes", "--client-id", NOTES_CLIENT,
            "--web", "--origin", base, "--scope", "read")  # fmt: skip
        cli(db, "client", "create", "--name", "Admin console", "--client-id", CONSOLE_CLIENT,
            "--public", "--grant", "password", "--scope", "portcullis:admin")  # fmt: skip
        cli(db, "client", "create", "--name", "Phone app", "--client-id", PHONE_CLIENT,
            "--public", "--scope", "read")  # fmt: skip
        api = json.loads(cli(db, "client", "create", "--name", "API", "--client-id", API_CLIENT,
                             "--introspect", "--json"))  # fmt: skip
        cli(db, "user", "create", ALICE[0], "--password-stdin", "--scope", "read", stdin=ALICE[1] + "\n")
        cli(db, "user", "create", ROOT[0], "--password-stdin", "--admin", stdin=ROOT[1] + "\n")
        if setup is not None:
            setup(db)

        log = Path(tmp) / "server.log"
        args = [str(BINARY), "--database", db, "serve", "--listen", f"127.0.0.1:{port}", "--issuer", base,
                "--access-token-ttl", str(access_token_ttl), *serve_args]  # fmt: skip
        if demo:
            args.append("--demo")
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, env=clean_env())
        server = Portcullis(base, log, api["client_secret"])
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"portcullis exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    if server.request("GET", "/healthz").status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"portcullis did not answer /healthz in 30 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
