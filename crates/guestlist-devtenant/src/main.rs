//! `devtenant`: run the emulated Entra tenant, or play self-service sign-ups against an
//! approval API.
//!
//! ```text
//! devtenant [--listen 127.0.0.1:8900] [--config FILE.toml|.json] [--state FILE.json]
//! devtenant signup --api URL --username U --password P [--count N] [--seed S] [--tenant URL]
//!                  [--flow workforce|external|mixed] [--extension-resource URI] [--extension-timeout-ms MS]
//! ```
//! Every flag also reads a `DEVTENANT_*` environment variable (see `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use guestlist_devtenant::userflow::{self, PlayerConfig};
use guestlist_devtenant::{DevTenant, DevTenantConfig, StartOptions};

#[derive(Parser, Debug)]
#[command(
    name = "devtenant",
    version,
    about = "An emulated Microsoft Entra ID tenant (sign-in, Graph subset, self-service sign-up user flow) for Guestlist development"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "DEVTENANT_LISTEN", default_value = guestlist_devtenant::defaults::LISTEN)]
    listen: SocketAddr,
    /// Configuration file (TOML or JSON, `DevTenantConfig`); defaults to the demo tenant.
    #[arg(long, env = "DEVTENANT_CONFIG")]
    config: Option<PathBuf>,
    /// JSON snapshot file: loaded at start when it exists, rewritten on every change.
    #[arg(long, env = "DEVTENANT_STATE")]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Play self-service sign-ups against an approval API, as Entra's user flow does.
    Signup {
        /// Approval API base URL (the connectors are `{api}/connectors/check-approval-status`
        /// and `{api}/connectors/request-approval`).
        #[arg(long, env = "DEVTENANT_SIGNUP_API")]
        api: String,
        /// HTTP Basic username configured on the API connectors.
        #[arg(long, env = "DEVTENANT_SIGNUP_USERNAME")]
        username: String,
        /// HTTP Basic password configured on the API connectors.
        #[arg(long, env = "DEVTENANT_SIGNUP_PASSWORD")]
        password: String,
        /// Number of sign-up attempts to play.
        #[arg(long, env = "DEVTENANT_SIGNUP_COUNT", default_value_t = 10)]
        count: usize,
        /// Seed of the generator (same seed, same people and order).
        #[arg(long, env = "DEVTENANT_SIGNUP_SEED", default_value_t = 1)]
        seed: u64,
        /// devtenant whose directory receives the created accounts; an empty value only prints.
        #[arg(
            long,
            env = "DEVTENANT_SIGNUP_TENANT",
            default_value = "http://127.0.0.1:8900"
        )]
        tenant: Option<String>,
        /// Connector timeout in seconds (Entra: 20).
        #[arg(long, env = "DEVTENANT_SIGNUP_TIMEOUT_SECS", default_value_t = 20)]
        timeout_secs: u64,
        /// Which user flow the sign-ups run: `workforce` (API connectors), `external` (custom
        /// authentication extensions `{api}/connectors/external-id/attribute-collection-start`
        /// and `-submit`; devtenant must run with `tenant_kind = "external"`), or `mixed`
        /// (Entra ID / Microsoft account people through the connectors, the others through the
        /// extensions).
        #[arg(long, env = "DEVTENANT_SIGNUP_FLOW", default_value = "workforce")]
        flow: userflow::FlowMix,
        /// The extensions' resource: the API's application ID URI (the tokens' `aud`).
        #[arg(long, env = "DEVTENANT_SIGNUP_EXTENSION_RESOURCE", default_value = guestlist_devtenant::defaults::API_APP_ID_URI)]
        extension_resource: String,
        /// The extensions' `timeoutInMilliseconds` (Entra: 200-2000, default 1000).
        #[arg(long, env = "DEVTENANT_SIGNUP_EXTENSION_TIMEOUT_MS", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(200..=2000))]
        extension_timeout_ms: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.listen, cli.config, cli.state).await,
        Some(Command::Signup {
            api,
            username,
            password,
            count,
            seed,
            tenant,
            timeout_secs,
            flow,
            extension_resource,
            extension_timeout_ms,
        }) => {
            let mut ext = userflow::ExtensionConfig::for_api(&api);
            ext.resource = extension_resource;
            ext.timeout = Duration::from_millis(extension_timeout_ms);
            let cfg = PlayerConfig {
                api,
                username,
                password,
                timeout: Duration::from_secs(timeout_secs),
                tenant_url: tenant.filter(|t| !t.is_empty()),
                extensions_app_id: guestlist_devtenant::defaults::EXTENSIONS_APP_ID.to_string(),
            };
            let people = userflow::generate(seed, count);
            let played = match flow {
                // The default: exactly the workforce transcript it always printed.
                userflow::FlowMix::Workforce => {
                    userflow::play_all(&cfg, &people, |line| println!("{line}")).await
                }
                _ => {
                    userflow::play_all_flows(&cfg, &ext, flow, &people, |line| println!("{line}"))
                        .await
                }
            };
            match played {
                Ok(summary) => {
                    println!("{summary}");
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devtenant: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    listen: SocketAddr,
    config: Option<PathBuf>,
    state: Option<PathBuf>,
) -> Result<(), String> {
    let cfg = match config {
        Some(p) => DevTenantConfig::from_file(&p).map_err(|e| e.to_string())?,
        None => DevTenantConfig::default(),
    };
    let tenant = DevTenant::start_with(
        cfg,
        StartOptions {
            listen,
            state_file: state,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("issuer: {}", tenant.issuer());
    println!("graph: {}", tenant.graph_base());
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    tenant.shutdown().await;
    Ok(())
}
