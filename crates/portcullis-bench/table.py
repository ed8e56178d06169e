#!/usr/bin/env python3
"""Prints the bench script's results (DIR/LABEL.MODE.ROUND.json, DIR/*.rss) as one Markdown table.

Figures are medians over the rounds. "ok/s" counts successful answers only
(200 with an access token): a refused request (429 or 503 from a throttle,
or any error) is in the errors column, not in the throughput, so a server
that refuses quickly does not look fast. "vs peer" is the median over rounds
of (a server's ok/s / the Node peer's ok/s in the same round, same mode and
grant), when the peer was run; "vs ceiling" the same against the
storage-free ceiling (refresh only), and "vs baseline" a portcullis-BACKEND
server against baseline-BACKEND (the bench script's --baseline), or a
seeded-SIZE-BACKEND server against the empty portcullis-BACKEND (--seeded).
"vs bearer" is, for a -dpop mode (refresh-dpop: refresh with DPoP proofs),
the median over rounds of its ok/s over the same server's bearer mode
(refresh) in the same round and grant; every ratio is of ok/s. Requests sent again on
use_dpop_nonce are not requests of their own; the errors column counts them,
and in the refresh modes the chains whose sign-in failed before the clock.
"CPU µs/ok" is the server process's own CPU time (user + system; not the
database's, not the load generator's) in the measured window over the
successful answers of that window (refusals cost CPU too, and are counted
in it), every grant of the mode together (portcullis-load
--server-pid): the cost of a request on the server, which the machine's
other work sways less than req/s. None for django-oauth-toolkit (its
workers are other processes).
"""
import collections
import json
import pathlib
import statistics
import sys

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench")
runs = collections.defaultdict(dict)  # (label, mode) -> {round: report}
for f in sorted(out.glob("*.json")):
    label, mode, rnd = f.stem.rsplit(".", 2)
    runs[(label, mode)][rnd] = json.loads(f.read_text())


def rss(label, what):
    try:
        return int((out / f"{label}.{what}.rss").read_text().strip()) / 1024
    except (OSError, ValueError):
        return None


def cpu_per_request(label, mode, rounds):
    """Median over rounds of the server's CPU µs per successful answer."""
    values = []
    for r in rounds.values():
        requests = sum(g["ok"] for g in r["grants"].values())
        if r.get("server_cpu_s") is not None and requests > 0:
            values.append(r["server_cpu_s"] / requests * 1e6)
    return f"{med(values):.0f}" if values else ""


def ok_rps(report, grant):
    """Successful answers of `grant` per second of the measured window."""
    g = report["grants"][grant]
    return g["ok"] / report["duration_s"] if report.get("duration_s") else 0.0


def med(values):
    return statistics.median(values) if values else float("nan")


def versus(label, mode, grant, rounds, other, other_mode=None):
    """Per-round ratios of label's ok/s to other's, same grant, same mode
    unless other_mode is given."""
    other_mode = other_mode or mode
    if (label, mode) == (other, other_mode):
        return ""
    theirs = runs.get((other, other_mode), {})
    ratios = []
    for rnd, r in rounds.items():
        p = theirs.get(rnd)
        if p and grant in p.get("grants", {}) and ok_rps(p, grant) > 0 and grant in r["grants"]:
            ratios.append(ok_rps(r, grant) / ok_rps(p, grant))
    return f"{med(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else ""


def against(label, mode, grant, rounds):
    """portcullis-B against baseline-B; seeded-B against portcullis-B (empty)."""
    if label.startswith("portcullis-"):
        return versus(label, mode, grant, rounds, "baseline-" + label.removeprefix("portcullis-"))
    if label.startswith("seeded-"):
        return versus(label, mode, grant, rounds, "portcullis-" + label.rsplit("-", 1)[1])
    return ""


def vs_bearer(label, mode, grant, rounds):
    """A -dpop mode against the same server's bearer mode."""
    if not mode.endswith("-dpop"):
        return ""
    return versus(label, mode, grant, rounds, label, mode.removesuffix("-dpop"))


print("| server | mode | grant | rounds | ok/s | vs peer | vs ceiling | vs baseline | vs bearer | p50 ms | p90 ms | p99 ms | max ms | errors | CPU µs/ok | RSS idle / peak MiB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
for (label, mode), rounds in sorted(runs.items()):
    grants = sorted({g for r in rounds.values() for g in r["grants"]})
    for grant in grants:
        if mode.removesuffix("-dpop") == "refresh" and grant == "password":
            continue  # re-sign-ins after a broken chain; they show as refresh errors
        gs = [r["grants"][grant] for r in rounds.values() if grant in r["grants"]]
        oks = [ok_rps(r, grant) for r in rounds.values() if grant in r["grants"]]
        errors = collections.Counter()
        for g in gs:
            errors.update(g["errors"])
            # Older reports have no nonce_retries; DPoP runs always do.
            if g.get("nonce_retries"):
                errors["use_dpop_nonce retries"] += g["nonce_retries"]
        if mode.removesuffix("-dpop") == "refresh":
            # Chains whose sign-in failed before the clock never show as requests.
            errors["failed chain sign-ins"] += sum(r.get("setup_failures", 0) for r in rounds.values())
            errors += collections.Counter()  # drops a zero count
        idle, peak = rss(label, "idle"), rss(label, mode)
        mem = f"{idle:.1f} / {peak:.1f}" if idle is not None and peak is not None else ""
        print(
            f"| {label} | {mode} | {grant} | {len(gs)} | {med(oks):.0f} "
            f"| {versus(label, mode, grant, rounds, 'node-peer')} | {versus(label, mode, grant, rounds, 'ceiling')} "
            f"| {against(label, mode, grant, rounds)} | {vs_bearer(label, mode, grant, rounds)} "
            f"| {med([g['p50_ms'] for g in gs]):.2f} | {med([g['p90_ms'] for g in gs]):.2f} "
            f"| {med([g['p99_ms'] for g in gs]):.2f} | {med([g['max_ms'] for g in gs]):.2f} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(errors.items())) or '0'} "
            f"| {cpu_per_request(label, mode, rounds)} | {mem} |"
        )
