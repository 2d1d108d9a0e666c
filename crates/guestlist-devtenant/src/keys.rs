//! RS256 signing keys: generation (RSA 2048), PEM persistence, JWKS publication and JWT
//! signing/verification. Emulates the tenant's `/discovery/v2.0/keys` document
//! (<https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-signature>).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::error::DevTenantError;

/// One RSA signing key with its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    /// Key ID (`kid` header and JWKS member): base64url SHA-256 of the modulus, 43 chars
    /// (Entra uses an X.509 thumbprint of similar shape).
    pub kid: String,
    pem: String,
    n: String,
    e: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("private", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Generates a fresh RSA 2048 key (takes a fraction of a second in an optimised build).
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if generation or encoding fails.
    pub fn generate() -> Result<Self, DevTenantError> {
        let key = rsa::PrivateKey::new(&mut rand::rng(), 2048)
            .map_err(|e| DevTenantError::Key(e.to_string()))?;
        Self::from_rsa(&key)
    }

    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if the PEM is not an RSA PKCS#8 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, DevTenantError> {
        let key =
            rsa::PrivateKey::from_pkcs8_pem(pem).map_err(|e| DevTenantError::Key(e.to_string()))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::PrivateKey) -> Result<Self, DevTenantError> {
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| DevTenantError::Key(e.to_string()))?
            .to_string();
        let der = key
            .to_pkcs1_der()
            .map_err(|e| DevTenantError::Key(e.to_string()))?;
        let n_bytes = key.n_bytes();
        let n = URL_SAFE_NO_PAD.encode(&n_bytes);
        let e = URL_SAFE_NO_PAD.encode(key.e_bytes());
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(&n_bytes));
        Ok(Self {
            kid,
            pem,
            n,
            e,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        })
    }

    /// The private key as PKCS#8 PEM (what the `--state` file stores).
    pub fn pkcs8_pem(&self) -> &str {
        &self.pem
    }

    /// The public key as a JWK in Entra's shape: `{"kty":"RSA","use":"sig","kid","n","e",
    /// "issuer"}` (Entra adds `x5t` and `x5c` certificates, which devtenant does not have).
    pub fn jwk(&self, issuer: &str) -> Value {
        json!({"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": self.n, "e": self.e, "issuer": issuer})
    }

    /// A verification key for this key's public half.
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if the components are malformed (never for generated keys).
    pub fn decoding_key(&self) -> Result<DecodingKey, DevTenantError> {
        DecodingKey::from_rsa_components(&self.n, &self.e)
            .map_err(|e| DevTenantError::Key(e.to_string()))
    }

    /// Signs `claims` as a compact JWS with header `{"typ":"JWT","alg":"RS256","kid"}`.
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if signing fails.
    pub fn sign(&self, claims: &Value) -> Result<String, DevTenantError> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| DevTenantError::Key(e.to_string()))
    }
}
