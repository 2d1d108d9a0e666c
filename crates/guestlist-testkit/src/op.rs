//! panva's certified `oidc-provider` (OpenID Certified™, Node) as an independent OpenID Provider
//! for tests: [`OidcProvider::start`] runs `node server.mjs <port>` in [`project_dir`]
//! (`tests/oidc-provider/` at the repository root, configured there) on a free loopback port and
//! waits for the `issuer: …` line the server prints.
//!
//! Used by devtenant's `tests/it/oidc_provider.rs` (its relying party against a certified OP) and
//! by `tests/it/reviewer_oidc_provider.rs` (the desktop app's sign-in against a certified OP).
//!
//! Needs `tests/oidc-provider/node_modules`, installed by `scripts/setup.sh` (which `make test`
//! runs first); [`OidcProvider::start`] fails with that instruction when it is missing.

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::net::free_port;

/// How long [`OidcProvider::start`] waits for the issuer line: Node loads oidc-provider and
/// generates an RSA key, which is slow on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The `tests/oidc-provider` folder of this repository (the node project: `server.mjs`,
/// `package.json`), located from this crate's `CARGO_MANIFEST_DIR`.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// A running oidc-provider; the node process is killed (and reaped) on drop, also when the test
/// panics.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    issuer: String,
}

impl OidcProvider {
    /// Starts `node server.mjs <port>` in [`project_dir`] with `env` added to its environment
    /// (e.g. `OP_IMPLY_CONSENT_PROMPT=1`, read by `server.mjs`), and returns once it has printed
    /// its issuer URL (`http://127.0.0.1:<port>`). The server's stderr is the test's.
    ///
    /// Errors ([`io::Error`], the message says what to do):
    /// - [`io::ErrorKind::NotFound`]: `node_modules/oidc-provider` is not installed (run
    ///   `scripts/setup.sh`), or `node` could not be started;
    /// - [`io::ErrorKind::UnexpectedEof`]: the process exited before printing its issuer;
    /// - [`io::ErrorKind::TimedOut`]: no issuer within [`START_TIMEOUT`].
    pub fn start(env: &[(&str, &str)]) -> io::Result<Self> {
        let dir = project_dir();
        if !dir.join("node_modules/oidc-provider").is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "tests/oidc-provider/node_modules is missing: run `scripts/setup.sh` (or `make setup`; `make test` runs it) to install the certified OpenID Provider used by this test",
            ));
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(free_port()?.to_string())
            .envs(env.iter().copied())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start `node` (scripts/setup.sh installs nodejs): {e}"),
                )
            })?;
        let stdout = child.stdout.take();
        // From here on the guard kills the process on every return path.
        let mut op = OidcProvider {
            child,
            issuer: String::new(),
        };
        let stdout = stdout.ok_or_else(|| io::Error::other("node's stdout was not captured"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading (and discarding) after the issuer so that the server never blocks
            // on a full pipe; ends when the process exits.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("issuer: ") {
                    let _ = tx.send(issuer.to_string());
                }
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(issuer) => {
                op.issuer = issuer;
                Ok(op)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = op.child.wait()?;
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "oidc-provider exited ({status}) before printing its issuer; its stderr is above"
                    ),
                ))
            }
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "oidc-provider printed no issuer within {} s",
                    START_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// The issuer URL the server printed (`http://127.0.0.1:<port>`, no trailing slash):
    /// discovery is at `{issuer}/.well-known/openid-configuration`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
