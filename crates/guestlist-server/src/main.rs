//! `guestlist-server`: the approval API binary. See the crate docs and README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use guestlist_server::Config;
use guestlist_server::config::Flags;
use guestlist_server::store::DatabaseUrl;

/// jemalloc is the server's allocator: under PostgreSQL check-status load glibc's malloc and free
/// (with `malloc_consolidate`) were about a sixth of the server's CPU (bench/NOTES.md,
/// "jemalloc").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// The database: a SQLite file, or a PostgreSQL URL
    /// `postgres://user[:password]@host[:port]/db[?sslmode=…]` (also `GUESTLIST_DATABASE`).
    #[arg(long)]
    database: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "GUESTLIST_LOG_FORMAT_JSON")]
    log_json: bool,
    /// Threads of the async runtime (0: one per CPU core). One by default: no handler does
    /// blocking work on the runtime (check-status answers from memory, writes go to the store's
    /// writer thread, approver reads to the blocking pool), and with more than one, every call
    /// whose body hyper reads wakes an idle worker through a futex (bench/NOTES.md: 69,000 →
    /// 81,000 check-status calls/s and p99 2.6 → 1.3 ms at 64 connections on 2 cores).
    #[arg(long, env = "GUESTLIST_WORKER_THREADS", default_value_t = 1)]
    worker_threads: usize,
    /// A command other than serving (none: serve).
    #[command(subcommand)]
    command: Option<Command>,
}

/// Commands besides serving.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copy the database (the `database` setting or --database) to FILE while the server runs,
    /// with SQLite's online backup API: a consistent snapshot, mode 0600 (issue 12).
    Backup {
        /// The copy to write (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

/// `guestlist-server backup --to FILE`.
fn run_backup(args: &Args, to: &std::path::Path) -> std::process::ExitCode {
    let database = match (&args.database, Config::load(args.config.as_deref())) {
        (Some(d), _) => d.parse::<DatabaseUrl>(),
        (None, Ok(c)) => Ok(c.database),
        (None, Err(e)) => {
            eprintln!("guestlist-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let database = match database.map(|d| d.sqlite_path().map(PathBuf::from)) {
        Ok(Some(path)) => path,
        Ok(None) => {
            eprintln!(
                "guestlist-server: backup copies a SQLite database; back PostgreSQL up with pg_dump"
            );
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("guestlist-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match guestlist_server::backup::backup(&database, to) {
        Ok(r) => {
            println!(
                "guestlist-server: backed up {} to {} ({} pages, {} bytes)",
                database.display(),
                to.display(),
                r.pages,
                r.bytes
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guestlist-server: backup failed: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(Command::Backup { to }) = &args.command {
        return run_backup(&args, to);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if args.worker_threads > 0 {
        runtime.worker_threads(args.worker_threads);
    }
    match runtime.enable_all().build() {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("guestlist-server: cannot start the async runtime: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> std::process::ExitCode {
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
    // Flags are merged before validation (issue 16), so `--database` is checked like the key.
    let flags = Flags {
        listen: args.listen,
        database: args.database.clone(),
    };
    let config = match Config::load_with(args.config.as_deref(), &flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("guestlist-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
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
        database
    );
    match server.admin_url() {
        Some(admin) => println!("guestlist-server admin (/metrics, /openapi.json) on {admin}"),
        None => println!("guestlist-server admin listener off"),
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}
