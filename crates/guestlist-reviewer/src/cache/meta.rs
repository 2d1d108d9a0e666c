//! The key/value `meta` table: last sync, change mark, session info, last event id.

use rusqlite::{OptionalExtension, params};

use super::Cache;
use crate::error::ReviewerError;

impl Cache {
    /// A `meta` value.
    ///
    /// Errors: `storage.error`.
    pub fn meta(&self, key: &str) -> Result<Option<String>, ReviewerError> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets (or with `None` deletes) a `meta` value.
    ///
    /// Errors: `storage.error`.
    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), ReviewerError> {
        let c = self.conn()?;
        match value {
            Some(v) => c.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => c.execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }
}
