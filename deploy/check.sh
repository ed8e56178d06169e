#!/usr/bin/env bash
# Checks the deployment files without a container engine or a cluster.
#
#     bash deploy/check.sh [--strict]
#
# Each check runs when its tool is present and says why when it is skipped.
# --strict (CI) makes a missing schema validator an error: install them with
# `pip install -r deploy/check-requirements.txt`. PyYAML is always required.
set -euo pipefail
cd "$(dirname "$0")"

strict=false
[ "${1:-}" = --strict ] && strict=true

ran=0
skipped=0
ok() { echo "ok: $*"; ran=$((ran + 1)); }
skip() { echo "skipped: $*"; skipped=$((skipped + 1)); }
fail() { echo "FAILED: $*" >&2; exit 1; }
need() { # a check that --strict requires
  if $strict; then fail "$* (pip install -r deploy/check-requirements.txt)"; fi
  skip "$*"
}
have() { command -v "$1" > /dev/null 2>&1; }

python3 -c 'import yaml' 2> /dev/null \
  || fail "PyYAML is missing: pip install -r deploy/check-requirements.txt"

echo "== compose"
if docker compose version > /dev/null 2>&1; then
  docker compose -f compose.yaml config -q
  ok "docker compose config"
elif have check-jsonschema; then
  check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
  ok "compose.yaml against the Compose Specification schema"
else
  need "compose.yaml: neither the docker compose plugin nor check-jsonschema"
fi
for s in postgres_password revocation_feed_secret; do
  [ -s "secrets/$s" ] || fail "secrets/$s is missing or empty"
done
# The wrapper that moves secrets into the environment is valid sh.
python3 - << 'PY'
import subprocess, yaml
c = yaml.safe_load(open("compose.yaml"))
for name, svc in c["services"].items():
    ep = svc.get("entrypoint")
    if ep and ep[:2] == ["/bin/sh", "-c"]:
        subprocess.run(["sh", "-n", "-c", ep[2].replace("$$", "$")], check=True)
PY
ok "compose entrypoint script parses"

if have haproxy; then
  # Outside the compose network the instances' names do not resolve; the
  # config is still checked (init-addr none).
  haproxy -c -q -f haproxy.cfg 2> /dev/null || haproxy -c -f haproxy.cfg
  ok "haproxy -c haproxy.cfg"
else
  skip "haproxy.cfg: haproxy is not installed"
fi

echo "== Dockerfile"
python3 - << 'PY'
import json, re, subprocess
text = open("Dockerfile").read().replace("\\\n", " ")
for line in text.splitlines():
    m = re.match(r"\s*(ENTRYPOINT|CMD|HEALTHCHECK.*?CMD)\s+(\[.*\])\s*$", line)
    if m:
        argv = json.loads(m.group(2))
        if argv[:2] == ["/bin/bash", "-c"]:
            subprocess.run(["bash", "-n", "-c", argv[2]], check=True)
assert "USER ${UID}:${UID}" in text and "EXPOSE 8080" in text
PY
ok "Dockerfile exec forms are JSON, the health check parses"

echo "== Kubernetes"
python3 - << 'PY'
import glob, os, yaml

files = sorted(glob.glob("kubernetes/*.yaml"))
kustomization = "kubernetes/kustomization.yaml"
resources = [f for f in files if f != kustomization]
listed = yaml.safe_load(open(kustomization))["resources"]
assert sorted(f"kubernetes/{r}" for r in listed) == resources, \
    f"kustomization.yaml lists {listed}, the directory has {resources}"

def mib(q):
    units = {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for u, f in units.items():
        if q.endswith(u):
            return float(q[: -len(u)]) * f
    return float(q) / 2**20

for path in resources:
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        for key in ("apiVersion", "kind"):
            assert doc.get(key), f"{path}: a document without {key}"
        assert (doc.get("metadata") or {}).get("name"), f"{path}: a document without metadata.name"
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert c["resources"]["limits"]["memory"], c["name"]
        main = next(c for c in pod["containers"] if c["name"] == "portcullis")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in main, f"{path}: no {probe}"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e.get("value") for e in main["env"]}
        workers = int(env["PORTCULLIS_HASH_WORKERS"])
        need = 16 + workers * 19 + 16  # idle + hashing + flood margin (docs/operations.md)
        limit = mib(main["resources"]["limits"]["memory"])
        assert limit >= need, f"memory limit {limit} MiB < {need} MiB for {workers} hashing workers"
        # SIGKILL must not cut the 10 s drain (plus preStop) short.
        assert pod["terminationGracePeriodSeconds"] > 10
print(f"{len(resources)} files: apiVersion, kind, metadata.name; Deployment probes, security, memory")
PY
ok "Kubernetes manifests: structure and Deployment requirements"

if have kubernetes-validate; then
  kubernetes-validate --strict --quiet $(ls kubernetes/*.yaml | grep -v /kustomization.yaml)
  ok "kubernetes-validate --strict (Kubernetes $(kubernetes-validate --version 2> /dev/null | tail -1) schemas)"
else
  need "Kubernetes schemas: kubernetes-validate is not installed"
fi
if have kubectl && kubectl kustomize --help > /dev/null 2>&1; then
  kubectl kustomize kubernetes > /dev/null
  ok "kubectl kustomize"
else
  skip "kustomization.yaml build: kubectl is not installed"
fi

echo "== systemd"
if have systemd-analyze; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unit="$tmp/portcullis.service"
  cp portcullis.service "$unit"
  # verify wants ExecStart to exist; stand in for a binary not installed here.
  [ -x /usr/local/bin/portcullis ] \
    || sed -i 's#^ExecStart=/usr/local/bin/portcullis#ExecStart=/usr/bin/true#' "$unit"
  out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out" >&2; fail "systemd-analyze verify"; }
  [ -z "$out" ] || { echo "$out" >&2; fail "systemd-analyze verify has warnings"; }
  ok "systemd-analyze verify portcullis.service"
  if systemd-analyze security --help 2>&1 | grep -q -- --offline; then
    systemd-analyze security --offline=true --threshold=20 "$unit" | tail -1
    ok "systemd-analyze security: exposure at most 2.0"
  fi
else
  skip "portcullis.service: systemd-analyze is not installed"
fi

echo "deploy checks: $ran ran, $skipped skipped"
