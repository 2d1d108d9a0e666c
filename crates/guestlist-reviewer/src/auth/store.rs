//! Where secrets live: the [`TokenStore`] trait (the refresh token, and the cache's SQLCipher
//! key, `crate::cache::key`), the OS keyring ([`KeyringStore`], service
//! [`KEYRING_SERVICE`](super::KEYRING_SERVICE)) and [`MemoryStore`] for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::KEYRING_SERVICE;
use crate::error::{ReviewerError, codes};

/// Where the refresh token is kept. Implementations are blocking (the keyring talks D-Bus);
/// the facade calls them on a blocking thread.
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// The secret stored under `account`, or `None`.
    ///
    /// Errors: `auth.keyring_unavailable` when the store cannot be read.
    fn load(&self, account: &str) -> Result<Option<String>, ReviewerError>;
    /// Stores `secret` under `account` (replacing any previous one).
    ///
    /// Errors: `auth.keyring_unavailable`.
    fn save(&self, account: &str, secret: &str) -> Result<(), ReviewerError>;
    /// Deletes `account`'s secret; deleting a missing one is not an error.
    ///
    /// Errors: `auth.keyring_unavailable`.
    fn delete(&self, account: &str) -> Result<(), ReviewerError>;
}

/// The OS keyring (`keyring` 3: Secret Service on Linux, Keychain, Credential Manager).
/// With no session bus or a locked keyring every call fails with `auth.keyring_unavailable`
/// and the keyring's own message (shown to the approver, never swallowed).
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    /// A store under the service name [`KEYRING_SERVICE`].
    pub fn new() -> Self {
        KeyringStore {
            service: KEYRING_SERVICE.into(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, ReviewerError> {
        keyring::Entry::new(&self.service, account).map_err(keyring_error)
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

fn keyring_error(e: keyring::Error) -> ReviewerError {
    ReviewerError::new(
        codes::KEYRING_UNAVAILABLE,
        format!("the OS keyring cannot be used: {e}"),
    )
}

impl TokenStore for KeyringStore {
    fn load(&self, account: &str) -> Result<Option<String>, ReviewerError> {
        match self.entry(account)?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn save(&self, account: &str, secret: &str) -> Result<(), ReviewerError> {
        self.entry(account)?
            .set_password(secret)
            .map_err(keyring_error)
    }

    fn delete(&self, account: &str) -> Result<(), ReviewerError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// A process-memory token store, for tests and for "don't remember me".
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, String>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` when any secret is stored (tests check sign-in and sign-out with it).
    pub fn load_any(&self) -> bool {
        self.map.lock().map(|m| !m.is_empty()).unwrap_or(false)
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, account: &str) -> Result<Option<String>, ReviewerError> {
        Ok(self
            .map
            .lock()
            .map_err(|_| ReviewerError::storage("token store poisoned"))?
            .get(account)
            .cloned())
    }

    fn save(&self, account: &str, secret: &str) -> Result<(), ReviewerError> {
        self.map
            .lock()
            .map_err(|_| ReviewerError::storage("token store poisoned"))?
            .insert(account.into(), secret.into());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), ReviewerError> {
        self.map
            .lock()
            .map_err(|_| ReviewerError::storage("token store poisoned"))?
            .remove(account);
        Ok(())
    }
}
