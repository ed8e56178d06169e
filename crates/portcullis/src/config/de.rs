//! Lenient readers for values that arrive as strings from the environment
//! and the command line: lists split on a separator, numbers and booleans
//! taken as text.

use serde::{Deserialize, Deserializer};

/// A list given as a list, or as one string split on `sep` (environment
/// variables and flags are strings).
fn list<'de, D: Deserializer<'de>>(d: D, sep: char) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(sep).map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A string; a number or boolean counts as its text (an environment value
/// such as `PORTCULLIS_AUDIENCE=12345` arrives as a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    S(String),
    I(i64),
    U(u64),
    F(f64),
    B(bool),
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        match t {
            Text::S(s) => s,
            Text::I(n) => n.to_string(),
            Text::U(n) => n.to_string(),
            Text::F(n) => n.to_string(),
            Text::B(b) => b.to_string(),
        }
    }
}

pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(String::from)
}

pub(super) fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|t| t.map(String::from))
}

pub(super) fn list_comma<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(d, ',')
}

pub(super) fn list_space<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(d, ' ')
}
