//! Starts panva's certified `oidc-provider` (`server.mjs` beside this file) for a test, on a free
//! loopback port, and waits for the `issuer: …` line it prints. Shared by devtenant's
//! `tests/oidc_provider.rs` and the reviewer's `tests/it/reviewer_oidc_provider.rs` through
//! `#[path]`.
//!
//! Needs `tests/oidc-provider/node_modules` (installed by `scripts/setup.sh`, which `make test`
//! runs first); fails with that instruction when it is missing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The node process; killed on drop (also when the test panics).
pub struct Op(Child);

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `node server.mjs <port>` in `dir` (the `tests/oidc-provider` folder) with `env`
/// added (e.g. `OP_IMPLY_CONSENT_PROMPT=1`). Returns the process guard and the issuer URL.
///
/// Panics with the install instruction when `node_modules` is missing, or when the OP has not
/// printed its issuer within 120 s (Node loads oidc-provider and makes an RSA key: slow on a
/// loaded 2-core machine).
pub fn start_op(dir: &Path, env: &[(&str, &str)]) -> (Op, String) {
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "tests/oidc-provider/node_modules is missing: run `scripts/setup.sh` (or `make setup`; `make test` runs it) to install the certified OpenID Provider used by this test"
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg(free_port().to_string())
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node must be installed (scripts/setup.sh installs nodejs)");
    let stdout = child.stdout.take().unwrap();
    let op = Op(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("issuer: ") {
                let _ = tx.send(issuer.to_string());
            }
        }
    });
    let issuer = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("oidc-provider printed its issuer within 120 s");
    (op, issuer)
}
