//! Configuration: defaults, then an optional TOML file (`--config`), then
//! `PORTCULLIS_*` environment variables (`__` nests: `PORTCULLIS_TLS__CERT`
//! is `tls.cert`), then command-line flags, each overriding the one before.
//!
//! Every key of the file is also a flag (`access_token_ttl` is
//! `--access-token-ttl`) and an environment variable
//! (`PORTCULLIS_ACCESS_TOKEN_TTL`). Secrets can be read from files
//! (`database_url_file`, `revocation_feed_secret_file`), as container
//! platforms mount them. An unknown key in the file, or a value that does
//! not parse, stops start-up with an error naming the key and where it came
//! from. The reference for every key is docs/configuration.md.

mod de;
mod keys;
mod load;
mod render;
mod resolve;
mod schema;

pub use keys::{ENV_PREFIX, env_name, flag_name, keys};
pub use load::{Loaded, Overrides, load};
pub use schema::{Config, TlsConfig};
