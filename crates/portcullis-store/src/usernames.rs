//! Username keys for users stored before usernames had them (migration 6),
//! or written since by an earlier version during a rolling update.
//!
//! Every stored name is checked against the rules of [`Username`] before
//! any key is written: a name the rules refuse, or names that would become
//! one account, stop the upgrade with a list of them. Accounts are never
//! merged and names never changed here; that is the operator's decision.
//!
//! Should a newer `precis-profiles` (newer Unicode tables) ever map some
//! stored name to another key, a migration that sets `username_key` to
//! NULL makes the next start key every user again, with the same check.

use std::collections::BTreeMap;
use std::fmt;

use portcullis_domain::{InvalidUsername, Username};

use crate::db::with_pool;
use crate::{MigrationError, SqlStore, StoreError};

/// Stored usernames that stop the upgrade to username keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UsernameConflicts {
    /// Users whose stored name the rules refuse: id, name, why.
    pub refused: Vec<(String, String, InvalidUsername)>,
    /// Users whose names would become one account: the shared key, then
    /// the id and name of each (by id).
    pub collisions: Vec<(String, Vec<(String, String)>)>,
}

impl fmt::Display for UsernameConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stored usernames stop the upgrade to RFC 8265 usernames; nothing was changed and no account was merged:"
        )?;
        for (id, name, why) in &self.refused {
            writeln!(f, "  user {id} {name:?}: {why}")?;
        }
        for (key, users) in &self.collisions {
            let list: Vec<String> = users.iter().map(|(id, name)| format!("{id} {name:?}")).collect();
            writeln!(f, "  these users would all sign in as {key:?}: {}", list.join(", "))?;
        }
        write!(
            f,
            "rename each refused name and all but one user of each group (or delete them), with the previous \
             version or in SQL (docs/operations.md, \"Usernames\"), then run `portcullis migrate` again"
        )
    }
}

/// Checks every stored username; `Ok` with each user's key (id, key) when
/// none is refused and no two share a key.
fn check(rows: Vec<(String, String)>) -> Result<Vec<(String, String)>, UsernameConflicts> {
    let mut refused = Vec::new();
    let mut by_key: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (id, name) in rows {
        match Username::parse(&name) {
            Ok(u) => by_key.entry(u.key().to_owned()).or_default().push((id, name)),
            Err(why) => refused.push((id, name, why)),
        }
    }
    let collisions: Vec<(String, Vec<(String, String)>)> = by_key
        .iter()
        .filter(|(_, users)| users.len() > 1)
        .map(|(key, users)| {
            let mut users = users.clone();
            users.sort();
            (key.clone(), users)
        })
        .collect();
    if !refused.is_empty() || !collisions.is_empty() {
        refused.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        return Err(UsernameConflicts { refused, collisions });
    }
    Ok(by_key
        .into_iter()
        .flat_map(|(key, users)| users.into_iter().map(move |(id, _)| (id, key.clone())))
        .collect())
}

/// Every user's id and stored name.
async fn stored_names(store: &SqlStore) -> Result<Vec<(String, String)>, StoreError> {
    Ok(with_pool!(&store.write, |c| {
        sqlx::query_as("SELECT id, username FROM users").fetch_all(c).await?
    }))
}

/// Checks every stored username, changing nothing.
///
/// # Errors
/// [`MigrationError::Usernames`] when one is refused or several share a key.
pub(crate) async fn check_stored(store: &SqlStore) -> Result<(), MigrationError> {
    check(stored_names(store).await?)?;
    Ok(())
}

/// Writes the key of every user that has none, after checking every stored
/// username (the keyless ones may collide with the others).
///
/// # Errors
/// As [`check_stored`]; a store failure.
pub(crate) async fn fill_missing_keys(store: &SqlStore) -> Result<(), MigrationError> {
    let missing: Vec<(String,)> = with_pool!(&store.write, |c| {
        sqlx::query_as("SELECT id FROM users WHERE username_key IS NULL")
            .fetch_all(c)
            .await
            .map_err(StoreError::from)?
    });
    if missing.is_empty() {
        return Ok(());
    }
    let missing: std::collections::HashSet<String> = missing.into_iter().map(|(id,)| id).collect();
    let keys = check(stored_names(store).await?)?;
    let keyed = with_pool!(&store.write, |c| {
        let mut tx = c.begin().await.map_err(StoreError::from)?;
        let mut keyed = 0_usize;
        for (id, key) in keys.iter().filter(|(id, _)| missing.contains(id)) {
            sqlx::query("UPDATE users SET username_key = $1 WHERE id = $2 AND username_key IS NULL")
                .bind(key)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
            keyed += 1;
        }
        tx.commit().await.map_err(StoreError::from)?;
        keyed
    });
    tracing::info!(users = keyed, "username keys written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(names: &[(&str, &str)]) -> Vec<(String, String)> {
        names.iter().map(|(i, n)| ((*i).to_owned(), (*n).to_owned())).collect()
    }

    #[test]
    fn look_alikes_and_refused_names_are_all_listed() {
        let err = check(rows(&[
            ("3", "ａｌｉｃｅ"),
            ("1", "alice"),
            ("2", "Alice"),
            ("4", "ali\u{200b}ce"),
            ("5", "bob"),
            ("6", "Carol Smith"),
        ]))
        .expect_err("conflicts");
        assert_eq!(
            err.collisions,
            vec![(
                "alice".to_owned(),
                rows(&[("1", "alice"), ("2", "Alice"), ("3", "ａｌｉｃｅ")])
            )]
        );
        assert_eq!(
            err.refused,
            vec![
                (
                    "4".to_owned(),
                    "ali\u{200b}ce".to_owned(),
                    InvalidUsername::CodePoint(0x200b)
                ),
                (
                    "6".to_owned(),
                    "Carol Smith".to_owned(),
                    InvalidUsername::CodePoint(0x20)
                ),
            ]
        );
        let text = err.to_string();
        assert!(text.contains(r#"user 4 "ali\u{200b}ce""#), "{text}");
        assert!(
            text.contains(r#"sign in as "alice": 1 "alice", 2 "Alice", 3 "ａｌｉｃｅ""#),
            "{text}"
        );
        assert!(text.contains("nothing was changed"), "{text}");
    }

    #[test]
    fn distinct_names_get_their_keys() {
        let mut keys = check(rows(&[("1", "Alice"), ("2", "ＢＯＢ")])).expect("no conflicts");
        keys.sort();
        assert_eq!(keys, rows(&[("1", "alice"), ("2", "bob")]));
    }
}
