//! SMTP delivery of the guest e-mails through lettre (issue 14 §5): `guest_email.smtp_url`
//! parsed into a transport that never sends in clear text unless told to.
//!
//! - `smtp://host[:port]` (port 587 by default): STARTTLS is **required** (RFC 3207); a server
//!   that does not offer it fails the delivery before any credential or message is sent.
//! - `smtps://host[:port]` (port 465 by default): implicit TLS (RFC 8314 §3.3).
//! - `smtp://host:port?tls=none`: plain SMTP, for tests and a local relay only (warned at start).
//!
//! TLS is rustls with the OS trust store (`rustls-native-certs`, which honours
//! `SSL_CERT_FILE`), verifying the server's certificate for `host`. Credentials
//! (`smtp_username`, `smtp_password`) are used with `AUTH PLAIN`/`LOGIN` after TLS; they are
//! never part of the URL. Each message opens one connection (one at a time: the job is
//! sequential), bounded by `timeout` per SMTP command.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::render::Rendered;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=none`: no TLS at all (tests only).
    None,
}

/// A parsed `smtp_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// The server's host name (or address): also the name its certificate must carry.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The protection.
    pub security: Security,
}

impl SmtpUrl {
    /// Parses `smtp://host[:port][?tls=none]` or `smtps://host[:port]`.
    ///
    /// Errors: a message naming what is wrong (never echoing user info, which is refused:
    /// credentials belong in `smtp_username` / `smtp_password`).
    pub fn parse(s: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(s.trim()).map_err(|e| {
            format!(
                "guest_email.smtp_url is not a URL ({e}): use smtp://host:port or smtps://host:port"
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("guest_email.smtp_url must not contain a user name or password: set guest_email.smtp_username and guest_email.smtp_password (or smtp_password_FILE)".into());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("guest_email.smtp_url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !(url.path().is_empty() || url.path() == "/") || url.fragment().is_some() {
            return Err("guest_email.smtp_url must be smtp://host:port or smtps://host:port, without a path".into());
        }
        let mut tls_none = false;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "none") if url.scheme() == "smtp" => tls_none = true,
                _ => {
                    return Err(format!(
                        "guest_email.smtp_url: unknown query parameter {k:?} (only tls=none, with smtp://, for tests)"
                    ));
                }
            }
        }
        let (security, default_port) = match url.scheme() {
            "smtp" if tls_none => (Security::None, 25),
            "smtp" => (Security::StartTls, 587),
            "smtps" => (Security::Implicit, 465),
            other => {
                return Err(format!(
                    "guest_email.smtp_url scheme {other:?} is not smtp:// (STARTTLS) or smtps:// (implicit TLS)"
                ));
            }
        };
        Ok(SmtpUrl {
            host,
            port: url.port().unwrap_or(default_port),
            security,
        })
    }
}

/// Why one delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused the message for good (a 5xx reply): trying again cannot help.
    #[error("refused by the SMTP server: {0}")]
    Permanent(String),
    /// A temporary refusal (4xx), a connection, TLS or timeout failure: worth trying again.
    #[error("SMTP delivery failed: {0}")]
    Transient(String),
    /// The recipient's address is not a valid mailbox: the message cannot be built.
    #[error("the recipient address is not a valid e-mail address")]
    BadRecipient,
}

/// The SMTP sender: the transport, built once, and the `From` mailbox.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A sender to `url` as `from` (`Name <address>` or `address`), with optional credentials
    /// and `timeout` for each SMTP command.
    ///
    /// Errors: a message naming the bad setting (`from` not a mailbox, TLS set-up failure).
    pub fn new(
        url: &SmtpUrl,
        from: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<Mailer, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("guest_email.from is not an e-mail address ({e})"))?;
        let tls = match url.security {
            Security::None => Tls::None,
            Security::StartTls | Security::Implicit => {
                let params = TlsParameters::new_rustls(url.host.clone())
                    .map_err(|e| format!("guest_email: TLS set-up failed: {e}"))?;
                if url.security == Security::StartTls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `mail` to `to` over one new connection: `Ok` once the server accepted it (250
    /// after `DATA`).
    ///
    /// Errors: [`SendError`] (permanent, transient, or a bad recipient address).
    pub async fn send(&self, to: &str, mail: &Rendered) -> Result<(), SendError> {
        let to: Mailbox = to.trim().parse().map_err(|_| SendError::BadRecipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|_| SendError::BadRecipient)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_require_tls_unless_told_otherwise() {
        let u = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!((u.port, u.security), (587, Security::StartTls));
        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((u.port, u.security), (465, Security::Implicit));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.security),
            ("127.0.0.1", 2525, Security::None)
        );
        for bad in [
            "http://mail.example.com",
            "smtp://user:secret@mail.example.com",
            "smtps://mail.example.com?tls=none",
            "smtp://mail.example.com/path",
            "smtp://mail.example.com?tls=maybe",
            "mail.example.com",
        ] {
            let e = SmtpUrl::parse(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
