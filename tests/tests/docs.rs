//! The documents cannot drift from the binary: the shell examples of
//! docs/getting-started.md (and of the other guides where they can run on
//! one machine) are run against the real `portcullis` on loopback with a
//! fresh SQLite file, and their output compared with what the document
//! shows ([`runner`]); the configuration reference is checked against the
//! configuration's keys and defaults. Needs `bash`, `curl` and `jq`.

#[path = "docs/runner.rs"]
mod runner;
mod support;

use runner::{Step, check_document, matches, parse};
use support::BIN;

#[test]
fn getting_started_runs_as_written() {
    check_document(BIN, "docs/getting-started.md", true);
}

#[test]
fn the_admin_console_bootstrap_of_web_md_runs_as_written() {
    check_document(BIN, "docs/web.md", true);
}

#[test]
fn the_administration_examples_of_operations_md_run_as_written() {
    check_document(BIN, "docs/operations.md", true);
}

#[test]
fn the_config_check_example_of_configuration_md_runs_as_written() {
    check_document(BIN, "docs/configuration.md", false);
}

/// The cells of the table under `## Keys` in configuration.md, by key.
fn key_table() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(format!("{}/../docs/configuration.md", env!("CARGO_MANIFEST_DIR")))
        .expect("configuration.md");
    let keys = text.split("\n## Keys\n").nth(1).expect("a Keys section");
    keys.lines()
        .skip_while(|l| !l.starts_with("| key |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect())
        .collect()
}

/// The first `code` span of a cell.
fn code(cell: &str) -> Option<&str> {
    cell.split('`').nth(1)
}

#[test]
fn the_configuration_table_lists_every_key_with_its_variable_flag_and_default() {
    use portcullis::config::{Config, env_name, flag_name, keys};
    let table = key_table();
    let mut documented: Vec<&str> = table.iter().map(|r| code(&r[0]).expect("a key")).collect();
    let mut known = keys();
    known.sort();
    documented.sort_unstable();
    assert_eq!(
        documented, known,
        "configuration.md's table and the configuration's keys differ"
    );
    let defaults = serde_json::to_value(Config::default()).expect("defaults");
    for row in &table {
        let [key, _type, default, env, flag, _meaning] = &row[..] else {
            panic!("a row of six cells: {row:?}");
        };
        let key = code(key).expect("key");
        assert_eq!(code(env), Some(env_name(key).as_str()), "{key}: environment variable");
        let expected_flag = if key.ends_with("_file") {
            None
        } else {
            Some(flag_name(key))
        };
        assert_eq!(code(flag).map(str::to_owned), expected_flag, "{key}: flag");
        let value = key.split('.').try_fold(&defaults, |v, k| v.get(k)).expect("a default");
        let shown = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(code(default), Some(shown.as_str()), "{key}: default");
    }
}

#[test]
fn the_runner_reads_commands_outputs_and_statuses() {
    let md = "text\n```console\n$ echo a \\\n  b\na b\n$ false\n? 1\n```\n```sh\n$ not run\n```\n```toml file=x.toml\na = 1\n```\n";
    assert_eq!(
        parse(md),
        vec![
            Step {
                line: 3,
                command: "echo a \\\n  b".to_owned(),
                expected: vec!["a b".to_owned()],
                status: 0
            },
            Step {
                line: 6,
                command: "false".to_owned(),
                expected: vec![],
                status: 1
            },
            Step {
                line: 14,
                command: "cat > x.toml <<'END_OF_DOCUMENT_FILE'\na = 1\nEND_OF_DOCUMENT_FILE".to_owned(),
                expected: vec![],
                status: 0
            },
        ]
    );
    let pattern = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(matches(&pattern(&["id: [..]", "x"]), &["id: 42", "x"]));
    assert!(matches(&pattern(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(matches(&pattern(&["a", "...", "z"]), &["a", "z"]));
    assert!(!matches(&pattern(&["id: [..]"]), &["name: 42"]));
    assert!(!matches(&pattern(&["a"]), &["a", "b"]), "extra output is a difference");
    assert!(!matches(&pattern(&["[..]x[..]y"]), &["yx"]));
}
