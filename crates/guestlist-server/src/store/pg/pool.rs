//! The connections of a replica on PostgreSQL (`[postgres]` in the configuration, issue
//! 13 §5): a pool for write transactions and the approvers' reads, and a few shared
//! connections that only check-status uses (`store/pg/reads.rs`), so that a check never waits for
//! a slot behind sign-ups holding connections through their commits (module docs of
//! [`super`], "Pools").

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::{Deserialize, Serialize};

use super::{ACQUIRE_TIMEOUT, CREATE_TIMEOUT};
use crate::store::StoreError;

/// Pool sizes and the check-status cache of one replica (`[postgres]`: `pool_size`,
/// `read_pool_size`, `check_cache`; environment `GUESTLIST_POSTGRES__POOL_SIZE`,
/// `GUESTLIST_POSTGRES__READ_POOL_SIZE`, `GUESTLIST_POSTGRES__CHECK_CACHE`). Ignored on SQLite.
///
/// A replica opens at most `pool_size + read_pool_size + 2` connections (the `+ 2` are the
/// `LISTEN` connections of the live streams and of the check-status cache): keep the sum over all replicas below the
/// server's `max_connections` (100 by default, 3 of them reserved for superusers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Connections for write transactions (request-approval, decisions, jobs) and the
    /// approvers' reads. The default, [`PoolConfig::DEFAULT_POOL_SIZE`], serves 64 concurrent
    /// connector calls: a sign-up holds a connection only for its transaction (two round
    /// trips, the second waiting for the commit's WAL flush), so 64 calls in flight share far fewer connections without queueing
    /// behind each other for long.
    pub pool_size: usize,
    /// Connections that only check-approval-status uses ([`super::PgStore::check_status`]),
    /// each with one worker that sends the checks waiting at the time as one statement
    /// (`store/pg/check_batch.rs`), so one or two keep up with 64 concurrent checks; default
    /// [`PoolConfig::DEFAULT_READ_POOL_SIZE`].
    pub read_pool_size: usize,
    /// Whether this replica answers check-status from its in-memory cache when it holds the
    /// person (`store/pg/check_cache.rs`: invalidated through the database before any write
    /// that changes the answer is acknowledged); default `true`. Writes wait for the caches of
    /// the other replicas either way.
    pub check_cache: bool,
}

impl PoolConfig {
    /// Default of [`PoolConfig::pool_size`].
    pub const DEFAULT_POOL_SIZE: usize = 32;
    /// Default of [`PoolConfig::read_pool_size`].
    pub const DEFAULT_READ_POOL_SIZE: usize = 2;
    /// The most either pool may have (PostgreSQL's own `max_connections` is usually lower).
    pub const MAX_POOL_SIZE: usize = 1024;

    /// Checks both sizes are within 1..=[`PoolConfig::MAX_POOL_SIZE`].
    ///
    /// Errors: [`StoreError::Backend`] naming the setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        for (name, n) in [
            ("postgres.pool_size", self.pool_size),
            ("postgres.read_pool_size", self.read_pool_size),
        ] {
            if n == 0 || n > Self::MAX_POOL_SIZE {
                return Err(StoreError::Backend(format!(
                    "{name} must be between 1 and {} (it is {n})",
                    Self::MAX_POOL_SIZE
                )));
            }
        }
        Ok(())
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_size: Self::DEFAULT_POOL_SIZE,
            read_pool_size: Self::DEFAULT_READ_POOL_SIZE,
            check_cache: true,
        }
    }
}

/// A deadpool pool of at most `size` connections made from `config` (timeouts: the module
/// docs of [`super`]).
///
/// Errors: [`StoreError::Backend`] when deadpool refuses the settings.
pub(super) fn build(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(ACQUIRE_TIMEOUT))
        .create_timeout(Some(CREATE_TIMEOUT))
        .recycle_timeout(Some(ACQUIRE_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Backend(format!("connection pool: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_out_of_range_are_refused() {
        let set: PoolConfig = serde_json::from_value(serde_json::json!({"pool_size": 4})).unwrap();
        assert_eq!(set.pool_size, 4);
        assert_eq!(set.read_pool_size, PoolConfig::DEFAULT_READ_POOL_SIZE);
        assert!(set.validate().is_ok());
        assert!(PoolConfig::default().validate().is_ok());
        for (pool_size, read_pool_size, name) in [
            (0, 8, "postgres.pool_size"),
            (32, 0, "postgres.read_pool_size"),
            (PoolConfig::MAX_POOL_SIZE + 1, 8, "postgres.pool_size"),
        ] {
            let err = PoolConfig {
                pool_size,
                read_pool_size,
                check_cache: true,
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(
            serde_json::from_value::<PoolConfig>(serde_json::json!({"size": 4})).is_err(),
            "unknown keys are refused"
        );
    }
}
