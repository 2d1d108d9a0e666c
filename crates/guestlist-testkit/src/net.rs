//! Loopback ports for test servers.

use std::io;
use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that nothing listened on when this returned: the OS picks it (bind to
/// port 0), and the listener is closed again so that the caller (or a child process it starts)
/// can bind it.
///
/// Another process may take the port in between; for a server of our own, prefer binding port 0
/// and reading the address back. Use this only when the port must be known before the listener
/// exists (a child process's argument, a redirect URI registered up front).
///
/// Errors: the [`io::Error`] of `bind` or `local_addr`.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
