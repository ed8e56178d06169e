#!/usr/bin/env python3
"""Prints the bench script's results (DIR/*.json, DIR/*.rss) as one Markdown table.

Ratios are against the Node peer's figure for the same mode and grant,
measured in the same run, when the peer was run.
"""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench")
runs = {}
for f in sorted(out.glob("*.json")):
    label, mode = f.stem.rsplit(".", 1)
    runs[(label, mode)] = json.loads(f.read_text())


def rss(label, what):
    p = out / f"{label}.{what}.rss"
    try:
        return int(p.read_text().strip()) / 1024
    except (OSError, ValueError):
        return None


print("| server | mode | grant | req/s | vs peer | p50 ms | p90 ms | p99 ms | max ms | errors | RSS idle / peak MiB |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|")
for (label, mode), r in runs.items():
    for grant, g in sorted(r["grants"].items()):
        if mode == "refresh" and grant == "password":
            continue  # re-sign-ins after a broken chain; shown in errors instead
        peer = runs.get(("node-peer", mode), {}).get("grants", {}).get(grant)
        ratio = f"{g['rps'] / peer['rps']:.2f}×" if peer and peer["rps"] > 0 and label != "node-peer" else ""
        errors = ", ".join(f"{k}: {v}" for k, v in g["errors"].items()) or "0"
        idle, peak = rss(label, "idle"), rss(label, mode)
        mem = f"{idle:.1f} / {peak:.1f}" if idle is not None and peak is not None else ""
        print(
            f"| {label} | {mode} | {grant} | {g['rps']:.0f} | {ratio} | {g['p50_ms']:.2f} | {g['p90_ms']:.2f} "
            f"| {g['p99_ms']:.2f} | {g['max_ms']:.2f} | {errors} | {mem} |"
        )
