//! `bench-bare ADDR`: every request is answered with a constant connector `Continue` JSON.
//! The ceiling of what the load generator can drive on this machine.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;

async fn constant() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"version":"1.0.0","action":"Continue"}"#,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bench-bare listening on http://{}", listener.local_addr()?);
    let app = Router::new().fallback(constant);
    axum::serve(listener, app).await?;
    Ok(())
}
