//! `guestlist-server`: the approval API binary. See the crate docs and README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use guestlist_server::Config;

/// The Guestlist approval API: answers Entra's API connectors and serves approvers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (keys as in the README); env GUESTLIST_* overrides it, flags override both.
    #[arg(long, env = "GUESTLIST_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// SQLite database file.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "GUESTLIST_LOG_FORMAT_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUESTLIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let mut config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("guestlist-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.database {
        config.database = d;
    }
    if config.approver_auth.issuer.is_none() {
        tracing::warn!(
            "approver_auth.issuer is not set: the approver API refuses every call (fail closed)"
        );
    }
    let database = config.database.clone();
    let server = match guestlist_server::spawn(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("guestlist-server: {e:#}");
            return std::process::ExitCode::from(1);
        }
    };
    println!(
        "guestlist-server listening on {} (database {})",
        server.base_url(),
        database.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}
