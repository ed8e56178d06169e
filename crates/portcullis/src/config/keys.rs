//! The configuration's keys and the environment variable and flag that
//! set each.

use super::schema::Config;

/// The environment variables' prefix.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// The configuration's keys, as the file spells them (`tls.cert`).
#[must_use]
pub fn keys() -> Vec<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    walk(&key, v, out);
                } else {
                    out.push(key);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(Config::default()).unwrap_or_default(),
        &mut out,
    );
    out
}

/// The environment variable of a key: `tls.cert` → `PORTCULLIS_TLS__CERT`.
#[must_use]
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_ascii_uppercase())
}

/// The flag of a key: `tls.cert` → `--tls-cert`.
#[must_use]
pub fn flag_name(key: &str) -> String {
    match key {
        "database_url" => "--database".to_owned(),
        "resources" => "--resource".to_owned(),
        _ => format!("--{}", key.replace(['.', '_'], "-")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_key() {
        assert_eq!(env_name("tls.cert"), "PORTCULLIS_TLS__CERT");
        assert_eq!(env_name("access_token_ttl"), "PORTCULLIS_ACCESS_TOKEN_TTL");
        assert_eq!(flag_name("tls.cert"), "--tls-cert");
        assert_eq!(flag_name("refresh_idle_ttl"), "--refresh-idle-ttl");
        let keys = keys();
        assert!(keys.contains(&"tls.cert".to_owned()), "{keys:?}");
        assert!(keys.contains(&"database_url_file".to_owned()));
    }
}

#[cfg(test)]
mod cli_tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// `serve --help` shows the flags' defaults; they must be the
    /// configuration's defaults, or the help would lie.
    #[test]
    fn flag_defaults_are_the_configuration_defaults() {
        let cli = Cli::try_parse_from(["portcullis", "serve"]).expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let flags = serde_json::to_value(&args).expect("flags");
        let defaults = serde_json::to_value(Config::default()).expect("defaults");
        let mut compared = 0;
        for (field, value) in flags.as_object().expect("object") {
            let key = field.strip_prefix("tls_").map_or(field.as_str(), |_| "tls");
            let Some(default) = defaults.get(key) else {
                panic!("the flag field `{field}` is not a configuration key")
            };
            if key == "tls" {
                assert!(value.is_null());
                continue;
            }
            assert_eq!(value, default, "default of --{}", field.replace('_', "-"));
            compared += 1;
        }
        assert!(compared >= 25, "{compared} flags compared");
    }

    /// Every configuration key but the secret files is a flag of `serve`.
    #[test]
    fn every_key_is_a_flag() {
        let cmd = Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve");
        let flags: Vec<String> = serve
            .get_arguments()
            .chain(cmd.get_arguments())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        for key in keys() {
            if key.ends_with("_file") {
                continue;
            }
            assert!(
                flags.contains(&flag_name(&key)),
                "`{key}` has no flag {}",
                flag_name(&key)
            );
        }
    }
}
