//! Which database the server uses (issue 13 §1): `--database` / `GUESTLIST_DATABASE` /
//! `database` is either a PostgreSQL URL, `postgres://user[:password]@host[:port]/db[?sslmode=…]`
//! (also `postgresql://`), or anything else: the path of a SQLite file.
//!
//! The URL is parsed with the `url` crate (WHATWG URL rules, percent-encoded user and password);
//! its query (`sslmode`, `sslrootcert`, …) is passed on to the PostgreSQL driver as is.
//! [`DatabaseUrl`]'s `Display` never shows the password, so it can be logged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `database` setting: a SQLite file or a PostgreSQL URL (module docs).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file (created if missing), e.g. `guestlist.db`.
    Sqlite(PathBuf),
    /// A PostgreSQL database, e.g. `postgres://guestlist:secret@db.example:5432/guestlist?sslmode=verify-full`.
    Postgres(url::Url),
}

/// Why a `postgres://` setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("database: {0}")]
pub struct DatabaseUrlError(String);

impl DatabaseUrl {
    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DatabaseUrl::Sqlite(p) => Some(p),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// The full PostgreSQL URL, password included (for the driver only: never log it; use
    /// `Display`), if this is one.
    pub fn postgres_url(&self) -> Option<&str> {
        match self {
            DatabaseUrl::Postgres(u) => Some(u.as_str()),
            DatabaseUrl::Sqlite(_) => None,
        }
    }

    /// The setting as written (password included), for serialising the configuration.
    fn full(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => p.to_string_lossy().into_owned(),
            DatabaseUrl::Postgres(u) => u.to_string(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    /// `postgres://…` / `postgresql://…` (scheme case-insensitive) → [`DatabaseUrl::Postgres`],
    /// which must name a host and a database; anything else → [`DatabaseUrl::Sqlite`].
    ///
    /// Errors: a PostgreSQL URL that does not parse, or lacks the host or the database name.
    fn from_str(s: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(s)));
        }
        // The error of `url` names only the kind of fault, never the input (it may hold a password).
        let u = url::Url::parse(s)
            .map_err(|e| DatabaseUrlError(format!("not a valid PostgreSQL URL ({e})")))?;
        if u.host_str().is_none_or(str::is_empty) {
            return Err(DatabaseUrlError(
                "a PostgreSQL URL needs a host: postgres://user[:password]@host[:port]/db".into(),
            ));
        }
        if u.path().trim_start_matches('/').is_empty() {
            return Err(DatabaseUrlError(
                "a PostgreSQL URL needs a database name: postgres://user[:password]@host[:port]/db"
                    .into(),
            ));
        }
        Ok(DatabaseUrl::Postgres(u))
    }
}

impl From<PathBuf> for DatabaseUrl {
    fn from(p: PathBuf) -> DatabaseUrl {
        DatabaseUrl::Sqlite(p)
    }
}

impl From<&Path> for DatabaseUrl {
    fn from(p: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite(p.to_path_buf())
    }
}

impl fmt::Display for DatabaseUrl {
    /// The SQLite path, or the PostgreSQL URL with its password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "{}", p.display()),
            DatabaseUrl::Postgres(u) => {
                let mut shown = u.clone();
                if shown.password().is_some() {
                    let _ = shown.set_password(Some("***"));
                }
                write!(f, "{shown}")
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DatabaseUrl, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_and_paths() {
        let pg: DatabaseUrl = "postgres://gl:s3cr%40t@db.example:5433/guestlist?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            pg.postgres_url(),
            Some("postgres://gl:s3cr%40t@db.example:5433/guestlist?sslmode=require")
        );
        assert_eq!(
            pg.to_string(),
            "postgres://gl:***@db.example:5433/guestlist?sslmode=require"
        );
        assert!(!format!("{pg:?}").contains("s3cr"));
        let pg2: DatabaseUrl = "POSTGRESQL://gl@localhost/g".parse().unwrap();
        assert!(pg2.postgres_url().is_some());
        for path in [
            "guestlist.db",
            "/var/lib/guestlist/g.db",
            "postgres.db",
            "./postgres:x",
        ] {
            let d: DatabaseUrl = path.parse().unwrap();
            assert_eq!(d.sqlite_path(), Some(Path::new(path)));
        }
        for bad in [
            "postgres://",
            "postgres://host",
            "postgres://host/",
            "postgres://u:p@/db",
        ] {
            let e = bad.parse::<DatabaseUrl>().unwrap_err();
            assert!(!e.to_string().contains(":p@"), "{e}");
        }
        let back: DatabaseUrl = serde_json::from_value(serde_json::to_value(&pg).unwrap()).unwrap();
        assert_eq!(back, pg);
    }
}
