//! Environment overrides of a TOML configuration (feature `config`), one rule for every
//! binary: a variable `<PREFIX><section>__<field>=<value>` sets that field (double
//! underscores separate the path; names are lower case as in the file). The value is
//! read as a TOML value when it parses as one (`8080`, `true`, `"x"`, `["a"]`) and as a
//! string otherwise. Variables without the prefix are ignored; a path through a value
//! (not a section) or with an empty segment is an error naming the variable.
//!
//! ```
//! let mut t: toml::Table = toml::from_str("[registry]\ngenesis = \"00\"\n").unwrap();
//! phalanx_types::env_config::apply(&mut t, "APP__",
//!     [("APP__registry__genesis".to_owned(), "ab".to_owned())]).unwrap();
//! assert_eq!(t["registry"]["genesis"].as_str(), Some("ab"));
//! ```

/// An override that cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid environment override {name}: {reason}")]
pub struct EnvError {
    /// The variable.
    pub name: String,
    /// Why.
    pub reason: &'static str,
}

/// Applies every override among `env` (pairs of name and value) to `table`.
pub fn apply(
    table: &mut toml::Table,
    prefix: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), EnvError> {
    for (name, raw) in env {
        let Some(path) = name.strip_prefix(prefix) else {
            continue;
        };
        let bad = |reason| EnvError {
            name: name.clone(),
            reason,
        };
        let keys: Vec<&str> = path.split("__").collect();
        let (last, parents) = keys.split_last().ok_or_else(|| bad("empty path"))?;
        if keys.iter().any(|k| k.is_empty()) {
            return Err(bad("empty path segment"));
        }
        let mut at = &mut *table;
        for k in parents {
            at = at
                .entry((*k).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| bad("names a value, not a section"))?;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw.clone()));
        at.insert((*last).to_owned(), value);
    }
    Ok(())
}
