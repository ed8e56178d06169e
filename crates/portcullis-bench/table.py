#!/usr/bin/env python3
"""Prints the bench script's results (DIR/LABEL.MODE.ROUND.json, DIR/*.rss) as one Markdown table.

Figures are medians over the rounds. "vs peer" is the median over rounds of
(our req/s / the Node peer's req/s in the same round, same mode and grant),
when the peer was run.
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


def med(values):
    return statistics.median(values) if values else float("nan")


print("| server | mode | grant | rounds | req/s | vs peer | p50 ms | p90 ms | p99 ms | max ms | errors | RSS idle / peak MiB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for (label, mode), rounds in sorted(runs.items()):
    grants = sorted({g for r in rounds.values() for g in r["grants"]})
    for grant in grants:
        if mode == "refresh" and grant == "password":
            continue  # re-sign-ins after a broken chain; they show as refresh errors
        gs = [r["grants"][grant] for r in rounds.values() if grant in r["grants"]]
        ratios = []
        if label != "node-peer":
            peer = runs.get(("node-peer", mode), {})
            for rnd, r in rounds.items():
                p = peer.get(rnd, {}).get("grants", {}).get(grant)
                if p and p["rps"] > 0 and grant in r["grants"]:
                    ratios.append(r["grants"][grant]["rps"] / p["rps"])
        errors = collections.Counter()
        for g in gs:
            errors.update(g["errors"])
        idle, peak = rss(label, "idle"), rss(label, mode)
        mem = f"{idle:.1f} / {peak:.1f}" if idle is not None and peak is not None else ""
        ratio = f"{med(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else ""
        print(
            f"| {label} | {mode} | {grant} | {len(gs)} | {med([g['rps'] for g in gs]):.0f} | {ratio} "
            f"| {med([g['p50_ms'] for g in gs]):.2f} | {med([g['p90_ms'] for g in gs]):.2f} "
            f"| {med([g['p99_ms'] for g in gs]):.2f} | {med([g['max_ms'] for g in gs]):.2f} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(errors.items())) or '0'} | {mem} |"
        )
