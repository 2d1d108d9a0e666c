//! The crate's error enum (library-level failures: configuration, key material, state file,
//! binding). Protocol errors (Entra's `AADSTS…` JSON, Graph's ODataError) are answers, not
//! errors, and live in [`crate::oidc`] and [`crate::graph`].

/// Errors of the devtenant library API.
#[derive(Debug, thiserror::Error)]
pub enum DevTenantError {
    /// The configuration is invalid (message names the field).
    #[error("devtenant config: {0}")]
    Config(String),
    /// Generating, loading or using an RSA signing key failed.
    #[error("devtenant signing key: {0}")]
    Key(String),
    /// Reading or writing the `--state` snapshot file failed.
    #[error("devtenant state file: {0}")]
    State(String),
    /// Binding or serving the listener failed.
    #[error("devtenant I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A token could not be minted (unknown user, bad scope...).
    #[error("devtenant token: {0}")]
    Token(String),
}
