//! Loading: the layers (defaults, file, environment, flags) merged with
//! figment, and where each value came from.

use std::path::Path;

use clap::ArgMatches;
use clap::parser::ValueSource;
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::Serialize;

use super::keys::{ENV_PREFIX, env_name, flag_name, keys};
use super::schema::Config;

/// Environment variables with the prefix that are not configuration keys
/// but are read by Portcullis itself.
const ENV_NOT_KEYS: &[&str] = &["CONFIG"];

/// The configuration with where it came from.
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    figment: Figment,
    /// `PORTCULLIS_*` variables that name no key (warned about at start:
    /// the environment is shared, e.g. Kubernetes adds `PORTCULLIS_PORT`
    /// for a Service named `portcullis`).
    pub unknown_env: Vec<String>,
}

/// Command-line values for configuration keys, taken only where the user
/// typed them (a flag's default must not override the file or the
/// environment).
#[derive(Default)]
pub struct Overrides(Vec<(String, serde_json::Value)>);

impl Overrides {
    /// Sets `key` (`tls.cert`) as if typed on the command line.
    pub fn set(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.0.push((key.to_owned(), value.into()));
    }

    /// Adds the keys of `args` (a clap `Args` struct whose field names are
    /// configuration keys, `tls_cert` for `tls.cert`) that `matches` says
    /// came from the command line.
    pub fn add(&mut self, matches: &ArgMatches, args: &impl Serialize) {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(args) else {
            return;
        };
        let known = keys();
        for (field, value) in fields {
            let key = field
                .strip_prefix("tls_")
                .map_or_else(|| field.clone(), |k| format!("tls.{k}"));
            if !known.contains(&key) || value.is_null() {
                continue;
            }
            if matches.value_source(&field) == Some(ValueSource::CommandLine) {
                self.0.push((key, value));
            }
        }
    }
}

/// Loads the configuration: defaults, the file at `path` (if any), the
/// environment, then `overrides`.
///
/// # Errors
/// When the file cannot be read or parsed, a key is unknown, or a value
/// does not fit its key; the message names the key and its source.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Loaded> {
    let known = keys();
    let known_top: Vec<String> = known
        .iter()
        .map(|k| k.split('.').next().unwrap_or(k).to_owned())
        .collect();
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = path {
        if !path.is_file() {
            anyhow::bail!("configuration file {}: not found", path.display());
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // Before or after `split` maps `TLS__KEY` to `tls.key`.
    let top_of = |var: &str| {
        var.split("__")
            .next()
            .and_then(|v| v.split('.').next())
            .unwrap_or(var)
            .to_ascii_lowercase()
    };
    let env = Env::prefixed(ENV_PREFIX).split("__").filter({
        let known_top = known_top.clone();
        move |k| known_top.contains(&top_of(k.as_str()))
    });
    figment = figment.merge(env);
    for (key, value) in &overrides.0 {
        figment = figment.merge(Serialized::default(key, value));
    }
    let config: Config = figment.extract().map_err(|e| anyhow::anyhow!(describe(e)))?;
    let mut unknown_env: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| k.strip_prefix(ENV_PREFIX).map(str::to_owned))
        .filter(|k| !known_top.contains(&top_of(k)) && !ENV_NOT_KEYS.contains(&k.as_str()))
        .map(|k| format!("{ENV_PREFIX}{k}"))
        .collect();
    unknown_env.sort();
    Ok(Loaded {
        config,
        figment,
        unknown_env,
    })
}

/// Figment's errors, one per line, each naming the key and its source.
fn describe(e: figment::Error) -> String {
    let lines: Vec<String> = e
        .into_iter()
        .map(|e| {
            let mut line = String::from("configuration: ");
            if !e.path.is_empty() {
                let key = e.path.join(".");
                line.push_str(&format!("`{key}`: "));
            }
            line.push_str(&e.kind.to_string());
            if let Some(md) = &e.metadata {
                if md.name.contains("environment") {
                    line.push_str(&format!(" (from {})", env_name(&e.path.join("."))));
                } else if md.name.contains("TOML") {
                    let src = md.source.as_ref().map(ToString::to_string).unwrap_or_default();
                    line.push_str(&format!(" (from file {src})"));
                } else if md.name.contains("Value") {
                    line.push_str(&format!(" (from {})", flag_name(&e.path.join("."))));
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

impl Loaded {
    /// Where `key`'s value came from: "default", the file, the environment
    /// variable or the flag.
    #[must_use]
    pub fn source_of(&self, key: &str) -> String {
        match self.figment.find_metadata(key) {
            None => "default".to_owned(),
            Some(md) if md.name.contains("Config") => "default".to_owned(),
            Some(md) if md.name.contains("environment") => env_name(key),
            Some(md) if md.name.contains("TOML") => match &md.source {
                Some(src) => format!("file {src}"),
                None => "file".to_owned(),
            },
            Some(_) => flag_name(key),
        }
    }
}
