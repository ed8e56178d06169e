#!/usr/bin/env bash
# API contract test: runs the real server on a fresh SQLite database and
# points schemathesis at its /openapi.json. Fails on any 5xx, and on any
# answer (status, content type, body) that the document does not describe.
#
#   tests/api-contract/run.sh
#
# PORTCULLIS_CONTRACT_EXAMPLES  test cases per operation (default 150)
# PORTCULLIS_CONTRACT_SEED      schemathesis seed (default fixed, so that CI
#                               runs the same cases; set another to explore)
# PORTCULLIS_CONTRACT_VENV      where to install schemathesis
#                               (default /tmp/portcullis-contract-venv)
# PORTCULLIS_CONTRACT_DATABASE_URL  an empty database to use instead of a
#                               fresh SQLite file (e.g. a new PostgreSQL one)
# PORTCULLIS_CONTRACT_CHECKS    schemathesis checks (default: the five in `checks=` below)
# PORTCULLIS_CONTRACT_ARGS      more schemathesis options, e.g. "--report har
#                               --report-dir /tmp/st --output-sanitize false"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

examples="${PORTCULLIS_CONTRACT_EXAMPLES:-150}"
seed="${PORTCULLIS_CONTRACT_SEED:-20240611}"
venv="${PORTCULLIS_CONTRACT_VENV:-/tmp/portcullis-contract-venv}"
checks="${PORTCULLIS_CONTRACT_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}"

echo "-- building portcullis"
cargo build -p portcullis --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/portcullis"

echo "-- installing schemathesis"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

work="$(mktemp -d)"
server=""
sink=""
cleanup() {
  for pid in $server $sink; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

export PORTCULLIS_DATABASE_URL="${PORTCULLIS_CONTRACT_DATABASE_URL:-sqlite://$work/portcullis.db}"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

echo "-- creating clients and users"
# `alice` and her password are the token request example of the document
# (the examples phase signs her in); `victim` is what the operations that
# end sign-ins act on (see schemathesis.toml).
client_json="$("$bin" client create --name "API contract" --client-id contract \
  --scope "read portcullis:admin" --default-scope read --introspect --json)"
client_secret="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])' <<<"$client_json")"
"$bin" client create --name "Victim" --client-id victim --public --scope read >/dev/null
password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')"
"$bin" user create alice --scope read --password-stdin >/dev/null <<<"a long passphrase"
"$bin" user create victim --scope read --password-stdin >/dev/null <<<"$password"
"$bin" user create admin --scope read --admin --password-stdin >/dev/null <<<"$password"

# Mail configured (to a sink on loopback, tests/browser/smtp_sink.py), so
# that the mail routes answer as on a server that sends mail; without it
# they answer 501 mail_not_configured, which is documented and tested in
# tests/tests/account_recovery.rs.
echo "-- starting an SMTP sink"
python3 - "$PWD/tests/browser" "$work/smtp.port" <<'PY' &
import sys, time
sys.path.insert(0, sys.argv[1])
from smtp_sink import smtp_sink
with smtp_sink() as sink:
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(sink.port))
    import os
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    while True:
        time.sleep(3600)
PY
sink=$!
for _ in $(seq 1 100); do [ -s "$work/smtp.port" ] && break; sleep 0.1; done
[ -s "$work/smtp.port" ] || { echo "FATAL: the SMTP sink did not start" >&2; exit 1; }
smtp_url="smtp://127.0.0.1:$(cat "$work/smtp.port")?tls=none"

echo "-- starting the server on $base"
PORTCULLIS_LOG_FORMAT=text "$bin" serve --listen "127.0.0.1:$port" --issuer "$base" \
  --smtp-url "$smtp_url" --mail-from "Portcullis contract test <no-reply@example.com>" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "FATAL: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { cat "$work/server.log"; echo "FATAL: the server is not ready" >&2; exit 1; }

# Signs in (password grant) and prints the response's `field`.
sign_in() { # username scope device field
  curl -fsS -u "contract:$client_secret" "$base/oauth/token" -d grant_type=password \
    --data-urlencode "username=$1" --data-urlencode "password=$password" \
    --data-urlencode "scope=$2" --data-urlencode "device_name=$3" |
    python3 -c "import json, sys; print(json.load(sys.stdin)['$4'])"
}
# The `sid` (device id) of an access token.
sid() {
  python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sid"])' "$1"
}

echo "-- signing in the admin (twice) and the victim"
access_token="$(sign_in admin "read portcullis:admin" "contract test" access_token)"
spare_device="$(sid "$(sign_in admin read "spare" access_token)")"
victim_device="$(sid "$(sign_in victim read "victim" access_token)")"

echo "-- schemathesis ($examples cases per operation, seed $seed)"
export PORTCULLIS_CONTRACT_ACCESS_TOKEN="$access_token"
export PORTCULLIS_CONTRACT_CLIENT_ID=contract
export PORTCULLIS_CONTRACT_CLIENT_SECRET="$client_secret"
export PORTCULLIS_CONTRACT_VICTIM_DEVICE="$victim_device"
export PORTCULLIS_CONTRACT_ADMIN_SPARE_DEVICE="$spare_device"
status=0
# From the temporary directory: schemathesis keeps a cache in the working
# directory.
(cd "$work" && "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --checks "$checks" \
  --max-examples "$examples" \
  --seed "$seed" \
  --workers 1 \
  --generation-database none \
  --request-timeout 30 \
  --no-color ${PORTCULLIS_CONTRACT_ARGS:-}) || status=$?

if grep -q ' ERROR ' "$work/server.log"; then
  echo "The server logged errors:" >&2
  grep ' ERROR ' "$work/server.log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "The server's last log lines:" >&2
  tail -n 40 "$work/server.log" >&2
  echo "FAIL: the API contract test failed (schemathesis exit $status)" >&2
  exit "$status"
fi
echo "-- API contract: passed"
