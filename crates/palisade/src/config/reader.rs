//! The one accessor every section reads its keys through: it parses a key's value (as
//! set, or the registry's default), records what is wrong under the key's name, and
//! remembers which keys were read, so a key nothing reads is caught by a test.

use std::collections::{BTreeMap, BTreeSet};

use super::registry;

pub struct Reader<'a> {
    values: &'a BTreeMap<&'static str, String>,
    pub problems: Vec<String>,
    read: BTreeSet<&'static str>,
}

impl<'a> Reader<'a> {
    pub fn new(values: &'a BTreeMap<&'static str, String>) -> Reader<'a> {
        Reader {
            values,
            problems: Vec::new(),
            read: BTreeSet::new(),
        }
    }

    /// `key` parsed with `parse`: `None` (and a problem recorded) when it is missing or
    /// does not parse. For keys with a default in the registry. An empty value is read
    /// as unset, so it takes the default (`PALISADE_BODY_LIMIT=` in a `.env` or a
    /// compose file means "no opinion", not a parse error), as [`Reader::optional`]
    /// reads it.
    pub fn required<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.read.insert(key);
        let value = match self.values.get(key).map(String::as_str) {
            Some("") => registry::find(key).and_then(|k| k.default),
            other => other,
        };
        let Some(value) = value else {
            self.problem(key, "must be set");
            return None;
        };
        parse(value).map_err(|e| self.problem(key, &e)).ok()
    }

    /// `key` parsed with `parse` when it is set (and not empty): `Some(None)` when it is
    /// not, `None` (and a problem recorded) when it does not parse.
    pub fn optional<T>(
        &mut self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        self.read.insert(key);
        match self.values.get(key).filter(|v| !v.is_empty()) {
            None => Some(None),
            Some(value) => parse(value)
                .map(Some)
                .map_err(|e| self.problem(key, &e))
                .ok(),
        }
    }

    /// Records a problem with `key`.
    pub fn problem(&mut self, key: &str, message: &str) {
        self.problems.push(format!("{key}: {message}"));
    }

    /// The keys read so far.
    #[cfg(test)]
    pub fn read(&self) -> &BTreeSet<&'static str> {
        &self.read
    }
}
