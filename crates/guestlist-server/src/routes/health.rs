//! Operational endpoints: `GET /healthz` (the process answers), `GET /readyz` (the database
//! answers), `GET /metrics` (Prometheus text format 0.0.4), `GET /openapi.json` (utoipa).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// `GET /healthz`: 200 `ok` while the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the database answers, else 503.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "`ready`", body = String, content_type = "text/plain"),
              (status = 503, description = "`database unavailable`", body = String, content_type = "text/plain")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `GET /metrics` (admin listener only): connector answers by endpoint and code, decisions,
/// requests by status (from the store's in-memory index: the cost does not grow with the
/// number of rows), connections and connector authentication failures ([`crate::edge`]).
pub async fn metrics(State(state): State<AppState>) -> Response {
    // Without the database (PostgreSQL unreachable) the gauges are left out, not zeroed.
    let counts: Vec<(String, u64)> = match state.store.status_counts().await {
        Ok(counts) => counts
            .iter()
            .map(|(s, n)| (s.as_str().to_owned(), *n))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: requests by status not read");
            Vec::new()
        }
    };
    let mut body = state.metrics.render(&state.config.policy, &counts);
    state.edge.metrics.render(&mut body);
    body.push_str(&state.retention.render_metrics());
    body.push_str(&state.guest_email.render());
    body.push_str(&state.store.render_metrics());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `GET /openapi.json` (admin listener only): the OpenAPI 3.1 description of the public
/// listener's API. The admin listener's own two routes are not in it: they are not served
/// where the document's paths are.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::api_doc())
}
