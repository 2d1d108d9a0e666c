//! Testkit: helpers shared by the integration tests (`it/`) and the crash-trial helper process
//! (`testkit/crash_trial.rs`): a token store in a file, so a refresh token survives a process
//! that is killed and is shared with the process that resumes after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use guestlist_reviewer::{ReviewerError, TokenStore};

/// A [`TokenStore`] kept in one JSON file (`{account: secret}`), written atomically (temp file +
/// rename). For tests only: the secrets are in clear text.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store in `path` (created on the first save).
    pub fn new(path: &Path) -> FileStore {
        FileStore {
            path: path.to_owned(),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, ReviewerError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) => serde_json::from_str(&s).map_err(ReviewerError::storage),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(ReviewerError::storage(e)),
        }
    }

    fn write(&self, map: &BTreeMap<String, String>) -> Result<(), ReviewerError> {
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_string(map).map_err(ReviewerError::storage)?;
        std::fs::write(&tmp, text).map_err(ReviewerError::storage)?;
        std::fs::rename(&tmp, &self.path).map_err(ReviewerError::storage)
    }
}

impl TokenStore for FileStore {
    fn load(&self, account: &str) -> Result<Option<String>, ReviewerError> {
        Ok(self.read()?.get(account).cloned())
    }

    fn save(&self, account: &str, secret: &str) -> Result<(), ReviewerError> {
        let mut m = self.read()?;
        m.insert(account.into(), secret.into());
        self.write(&m)
    }

    fn delete(&self, account: &str) -> Result<(), ReviewerError> {
        let mut m = self.read()?;
        m.remove(account);
        self.write(&m)
    }
}

/// A TCP proxy on 127.0.0.1 in front of a server, with a switch: the "network" between the
/// reviewer and the approval API. Turning it off drops every open connection (event streams
/// included) and refuses new ones; it can also cut itself at the n-th decision report
/// (`POST …/decision`, which is then never forwarded), or refuse only the event stream. It
/// records the `Last-Event-ID` headers it forwarded.
#[derive(Debug, Clone)]
pub struct Proxy {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Debug)]
struct ProxyState {
    up: tokio::sync::watch::Sender<bool>,
    block_events: std::sync::atomic::AtomicBool,
    cut_at_decision: std::sync::atomic::AtomicU32,
    decisions: std::sync::atomic::AtomicU32,
    last_event_ids: std::sync::Mutex<Vec<String>>,
    streams: tokio::sync::watch::Sender<u32>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free port.
    ///
    /// Errors: the port cannot be bound.
    pub async fn start(upstream: std::net::SocketAddr) -> std::io::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = tokio::sync::watch::channel(true);
        let state = std::sync::Arc::new(ProxyState {
            up,
            block_events: Default::default(),
            cut_at_decision: Default::default(),
            decisions: Default::default(),
            last_event_ids: Default::default(),
            streams: tokio::sync::watch::channel(0).0,
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*st.up.borrow() {
                    continue; // dropped: connection closed at once
                }
                let st = st.clone();
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(upstream).await {
                        pipe(client, server, st).await;
                    }
                });
            }
        });
        Ok(Proxy { addr, state })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Turns the network on or off (off drops every open connection).
    pub fn set_up(&self, up: bool) {
        self.state.up.send_replace(up);
    }

    /// Whether the network is on.
    pub fn is_up(&self) -> bool {
        *self.state.up.borrow()
    }

    /// Turns the network off when the `n`-th decision report arrives (that one is not sent).
    pub fn cut_at_decision(&self, n: u32) {
        use std::sync::atomic::Ordering;
        self.state.decisions.store(0, Ordering::SeqCst);
        self.state.cut_at_decision.store(n, Ordering::SeqCst);
    }

    /// Refuses `GET /api/events` (a server or middlebox without SSE).
    pub fn block_events(&self, block: bool) {
        self.state
            .block_events
            .store(block, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until `n` event-stream requests (`GET /api/events`) have been forwarded in all.
    pub async fn event_streams(&self, n: u32) {
        let _ = self.state.streams.subscribe().wait_for(|c| *c >= n).await;
    }

    /// The `Last-Event-ID` values forwarded so far, in order.
    pub fn last_event_ids(&self) -> Vec<String> {
        self.state
            .last_event_ids
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

async fn pipe(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    st: std::sync::Arc<ProxyState>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut down = st.up.subscribe();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let to_client = tokio::io::copy(&mut sr, &mut cw);
    let to_server = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("GET /api/events") {
                if st.block_events.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if let Some(v) = text.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("last-event-id"))
                        .map(|(_, v)| v.trim().to_owned())
                }) && let Ok(mut ids) = st.last_event_ids.lock()
                {
                    ids.push(v);
                }
                st.streams.send_modify(|c| *c += 1);
            }
            if text.starts_with("POST /api/requests/") && text.contains("/decision ") {
                let n = st.decisions.fetch_add(1, Ordering::SeqCst) + 1;
                if n == st.cut_at_decision.load(Ordering::SeqCst) {
                    st.up.send_replace(false);
                    return Ok(());
                }
            }
            sw.write_all(&buf[..n]).await?;
        }
    };
    let cut = async {
        while down.changed().await.is_ok() {
            if !*down.borrow() {
                return;
            }
        }
    };
    tokio::select! {
        _ = to_client => {}
        _ = to_server => {}
        _ = cut => {}
    }
}
