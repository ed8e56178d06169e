//! The bench script's table (`table.py`): throughput and ratios count
//! successful answers only, so a server that refuses quickly (429) does not
//! look fast.

use std::path::Path;
use std::process::Command;

use serde_json::json;

fn report(count: u64, ok: u64, refused: u64, cpu_s: f64) -> serde_json::Value {
    json!({
        "mode": "password",
        "clients": 64,
        "password_clients": 64,
        "threads": 1,
        "dpop": false,
        "duration_s": 10.0,
        "url": "http://127.0.0.1:1/oauth/token",
        "grants": {"password": {
            "count": count, "ok": ok, "rps": count as f64 / 10.0, "ok_rps": ok as f64 / 10.0,
            "p50_ms": 100.0, "p90_ms": 150.0, "p99_ms": 200.0, "max_ms": 250.0,
            "errors": if refused > 0 { json!({"429": refused}) } else { json!({}) },
            "nonce_retries": 0
        }},
        "setup_failures": 0,
        "server_cpu_s": cpu_s
    })
}

/// The table's row for `label`, as cells.
fn row(table: &str, label: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row for {label} in\n{table}"));
    line.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
}

#[test]
fn refusals_count_as_errors_not_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 3000 answers, 500 of them sign-ins, the rest 429; the peer: 800, all sign-ins.
    std::fs::write(
        dir.path().join("portcullis-sqlite.password.1.json"),
        report(3000, 500, 2500, 10.0).to_string(),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("node-peer.password.1.json"),
        report(800, 800, 0, 16.0).to_string(),
    )
    .expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("table.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .output()
        .expect("python3 runs table.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).expect("utf-8");
    let header = row(&table, "server");
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let ours = row(&table, "portcullis-sqlite");
    assert_eq!(ours[col("ok/s")], "50", "{table}");
    assert_eq!(ours[col("vs peer")], "0.62× (0.62–0.62)", "{table}");
    assert_eq!(ours[col("errors")], "429: 2500", "{table}");
    // 10 s of server CPU over 500 sign-ins, not over 3000 answers.
    assert_eq!(ours[col("CPU µs/ok")], "20000", "{table}");
    assert_eq!(row(&table, "node-peer")[col("ok/s")], "80", "{table}");
}
