//! Driver and pool errors of the PostgreSQL store, and what a transaction body returns: which
//! failures mean "unavailable, retry later" (HTTP 503), which mean "run the transaction again",
//! and which are the store's own answers (module docs of [`super`], "Concurrency across
//! replicas").

use tokio_postgres::error::SqlState;

use super::ACQUIRE_TIMEOUT;
use super::CREATE_TIMEOUT;
use crate::store::StoreError;

/// Maps a driver error: a lost or refused connection, a server shutting down or refusing
/// connections, too many connections and a statement timeout are [`StoreError::Unavailable`]
/// (503, retry); anything else is [`StoreError::Backend`] with PostgreSQL's SQLSTATE and
/// message (never the URL, user or password).
pub(in crate::store) fn db_err(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() {
        return StoreError::Unavailable("the connection to the database was lost".into());
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let c = code.code();
        if c.starts_with("08")
            || c.starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::QUERY_CANCELED
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            return StoreError::Unavailable(format!("{}: {}", c, db.message()));
        }
        return StoreError::Backend(format!("{}: {}", c, db.message()));
    }
    let text = e.to_string();
    if text.contains("serializing") || text.contains("deserializ") {
        return StoreError::Corrupt(text);
    }
    // I/O, a connection that could not be made, a timeout: all mean "not reachable now".
    StoreError::Unavailable(text)
}

pub(in crate::store) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => db_err(e),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            StoreError::Unavailable(format!(
                "no free database connection within {} ms",
                ACQUIRE_TIMEOUT.as_millis()
            ))
        }
        PoolError::Timeout(_) => StoreError::Unavailable(format!(
            "no new database connection within {} ms",
            CREATE_TIMEOUT.as_millis()
        )),
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Whether `e` means "run the transaction again": a serialization failure, a deadlock, or a
/// unique violation (two replicas inserted the same key; the retry finds the winner's row).
pub(in crate::store) fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

/// A failure inside a transaction: a driver error (maybe retryable) or a store answer.
pub(in crate::store) enum TxError {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> TxError {
        TxError::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> TxError {
        TxError::Store(e)
    }
}

/// The result type of the transaction bodies.
pub(in crate::store) type TxResult<T> = Result<T, TxError>;
