//! Who calls the admin API and how it answers no: the bearer-token check every admin route sits
//! behind ([`require_operator`], giving the handler a [`Caller`]), refusals as JSON problems, the
//! caller's own tenant, and the audit-record JSON several admin pages share.

use std::sync::Arc;

use arqon_auth::Claims;
use arqon_core::audit::AuditRecord;
use arqon_core::governance::GovRole;
use arqon_proto::names::TenantId;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clock::now_us;
use crate::state::Shared;

pub(crate) fn problem(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(Box::new(
        (status, Json(json!({ "error": message.into() }))).into_response(),
    ))
}

/// The caller of an admin route: a verified token with role `admin` or `operator`.
#[derive(Clone, Debug)]
pub(crate) struct Caller(pub(crate) Claims);

/// 401 without a verifiable bearer token, 403 for any other role; the claims go to the handler.
pub(crate) async fn require_operator(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verified = arqon_auth::extract_token(bearer, None).and_then(|presented| {
        shared
            .verifier
            .verify(presented.token, now_us() / 1_000_000)
    });
    let claims = match verified {
        Ok(claims) => claims,
        Err(error) => {
            shared.metrics.auth_failures.inc(error.reason());
            return problem(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
                .into_response();
        }
    };
    if !GovRole::from_claim(claims.role.as_str()).may_administer() {
        return problem(StatusCode::FORBIDDEN, "role admin or operator required").into_response();
    }
    request.extensions_mut().insert(Caller(claims));
    next.run(request).await
}

/// A refused admin request, as its response.
pub(crate) struct Refusal(pub(crate) Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// The path's tenant, which must be the caller's own (a token never reaches another tenant).
pub(crate) fn own_tenant(caller: &Caller, tenant: &str) -> Result<TenantId, Refusal> {
    match TenantId::parse(tenant) {
        Ok(tenant) if tenant == caller.0.tenant => Ok(tenant),
        Ok(_) => Err(problem(StatusCode::FORBIDDEN, "not the token's tenant")),
        Err(_) => Err(problem(StatusCode::BAD_REQUEST, "invalid tenant id")),
    }
}

pub(crate) fn records_json(records: &[AuditRecord]) -> Vec<Value> {
    records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect()
}
