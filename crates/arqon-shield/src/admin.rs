//! The admin API (`/admin/v1/…`), merged into a node's router when `[admin] enabled`: governance
//! state, operator decisions, enforcement and the audit trail of a tenant (`specs/governance.md`,
//! "Admin API"), behind a bearer token with role `admin` or `operator` of that tenant.
//!
//! Every route merged into [`router`] sits behind the same token check; another area adds its
//! routes with one `.merge(...)` line there. The console's static page (`arqon-console`) is merged
//! after the check: it holds no data, and every call it makes comes back through the check.

use std::collections::BTreeMap;
use std::sync::Arc;

use arqon_brain::audit_log::AuditLogError;
use arqon_brain::governance::Applied;
use arqon_core::governance::{GovRole, Principal, rollout_to_wire};
use arqon_core::rollout::{RolloutConfig, RolloutPhase};
use arqon_proto::GovernanceCommand;
use arqon_proto::names::TenantId;
use arqon_proto::v1::{self, enforce::Action};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin_caller::{Caller, Refusal, own_tenant, problem, records_json, require_operator};
use crate::state::Shared;

/// The admin routes, behind the token check. Add another area's routes with `.merge(...)` before
/// the `route_layer`.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .merge(governance_routes())
        .merge(crate::admin_policy::routes())
        .merge(crate::admin_console::routes())
        .merge(crate::admin_history::routes())
        .route_layer(middleware::from_fn_with_state(shared, require_operator))
        // The console's page and assets: public like any login page (they hold no data; every
        // call they make goes through the token check above). Merged after the layer, so outside it.
        .merge(arqon_console::router())
}

fn governance_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/v1/tenants/{tenant}/governance", get(state))
        .route(
            "/admin/v1/tenants/{tenant}/governance/proposals/{id}/approve",
            post(approve),
        )
        .route(
            "/admin/v1/tenants/{tenant}/governance/proposals/{id}/reject",
            post(reject),
        )
        .route(
            "/admin/v1/tenants/{tenant}/governance/enforce",
            post(enforce),
        )
        .route("/admin/v1/tenants/{tenant}/governance/audit", get(audit))
        .route(
            "/admin/v1/tenants/{tenant}/governance/audit/verify",
            get(audit_verify),
        )
}

/// What a handler answers: a response, or a refusal (also a response).
type Answer = Result<Response, Refusal>;

async fn served(shared: &Shared, caller: &Caller, tenant: &str) -> Result<TenantId, Refusal> {
    let tenant = own_tenant(caller, tenant)?;
    shared
        .governance
        .serve(&tenant)
        .await
        .map_err(|e| problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(tenant)
}

fn phase_name(phase: &RolloutPhase) -> &'static str {
    match phase {
        RolloutPhase::Idle => "idle",
        RolloutPhase::Proposed { .. } => "proposed",
        RolloutPhase::Approved { .. } => "approved",
        RolloutPhase::Ramping { .. } => "ramping",
        RolloutPhase::Paused { .. } => "paused",
        _ => "done",
    }
}

/// `GET …/governance`: paused, catalog version, pending proposals and rollouts in flight.
async fn state(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Answer {
    let tenant = served(&shared, &caller, &tenant).await?;
    let control = match shared.governance.service().snapshot(&tenant).await {
        Ok(control) => control,
        Err(e) => return Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    };
    let pending: Vec<Value> = control
        .pending()
        .iter()
        .map(|p| {
            json!({
                "id": p.proposal.id,
                "digest": p.digest,
                "from": p.from.as_str(),
                "timestamp_us": p.proposal.timestamp_us,
                "variant_id": p.proposal.variant_id,
                "params": p.proposal.params.iter().collect::<BTreeMap<_, _>>(),
                "reason": p.proposal.reason,
                "confidence": p.proposal.confidence,
            })
        })
        .collect();
    let rollouts: Vec<Value> = control
        .in_flight()
        .iter()
        .map(|(id, rollout)| {
            json!({
                "proposal_id": id,
                "phase": phase_name(&rollout.phase),
                "percent_bp": rollout.percent_bp(),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant.as_str(),
        "paused": control.paused(),
        "catalog_version": control.catalog_version(),
        "pending": pending,
        "rollouts": rollouts,
    }))
    .into_response())
}

/// Runs a command as the caller and answers with its outcome: 200, or the first refusal's status.
async fn submit(
    shared: &Shared,
    caller: &Caller,
    tenant: &TenantId,
    command: GovernanceCommand,
) -> Answer {
    let principal = Principal {
        user: caller.0.sub.clone(),
        role: GovRole::from_claim(caller.0.role.as_str()),
    };
    match shared
        .governance
        .service()
        .submit(tenant, principal, command)
        .await
    {
        Ok(applied) => Ok(outcome(&applied)),
        Err(e) => Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

fn outcome(applied: &Applied) -> Response {
    let refusals: Vec<Value> = applied
        .refusals
        .iter()
        .map(|(code, message)| json!({ "code": code.as_str_name(), "message": message }))
        .collect();
    let status = applied
        .refusals
        .first()
        .map_or(StatusCode::OK, |(code, _)| match code {
            v1::ErrorCode::NotFound => StatusCode::NOT_FOUND,
            v1::ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            v1::ErrorCode::DigestMismatch | v1::ErrorCode::CatalogStale => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        });
    let body = json!({
        "ok": applied.refusals.is_empty(),
        "audit_records": applied.records.len(),
        "refusals": refusals,
    });
    (status, Json(body)).into_response()
}

/// A JSON request body that may be empty (then the defaults).
fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| problem(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Body of `POST …/proposals/{id}/approve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// Starting share, percent; with the two below, a ramp (all at once when absent).
    initial_percent: Option<f64>,
    increment_per_minute: Option<f64>,
    max_percent: Option<f64>,
    /// The digest the operator reviewed (checked against the stored proposal); empty: filled in.
    #[serde(default)]
    digest: String,
}

async fn approve(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let tenant = served(&shared, &caller, &tenant).await?;
    let body: ApproveBody = optional_json(&body)?;
    let rollout = match (
        body.initial_percent,
        body.increment_per_minute,
        body.max_percent,
    ) {
        (None, None, None) => None,
        (initial, step, max) => {
            let initial = initial.unwrap_or(0.0);
            match RolloutConfig::from_percent(initial, step.unwrap_or(0.0), max.unwrap_or(100.0)) {
                Ok(config) => Some(rollout_to_wire(&config)),
                Err(e) => return Err(problem(StatusCode::BAD_REQUEST, e.to_string())),
            }
        }
    };
    let approval = v1::Approval {
        proposal_id: id,
        proposal_digest: body.digest,
        rollout,
    };
    submit(
        &shared,
        &caller,
        &tenant,
        GovernanceCommand::Approval(approval),
    )
    .await
}

/// Body of `POST …/proposals/{id}/reject`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    #[serde(default)]
    reason: String,
}

async fn reject(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let tenant = served(&shared, &caller, &tenant).await?;
    let reason = Some(optional_json::<RejectBody>(&body)?.reason)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "rejected by operator".to_owned());
    let rejection = v1::Rejection {
        proposal_id: id,
        reason,
    };
    submit(
        &shared,
        &caller,
        &tenant,
        GovernanceCommand::Rejection(rejection),
    )
    .await
}

/// Body of `POST …/enforce`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnforceBody {
    /// `emergency-stop`, `pause`, `resume`, `set-variant` or `set-params`.
    action: String,
    /// For `set-variant`.
    variant_id: Option<u64>,
    /// For `set-params`.
    #[serde(default)]
    params: BTreeMap<String, f64>,
    #[serde(default)]
    reason: String,
}

async fn enforce(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
    Json(body): Json<EnforceBody>,
) -> Answer {
    let tenant = served(&shared, &caller, &tenant).await?;
    let action = match (body.action.as_str(), body.variant_id) {
        ("emergency-stop", _) => Action::EmergencyStop(v1::EmergencyStop {}),
        ("pause", _) => Action::PauseAdaptation(v1::PauseAdaptation {}),
        ("resume", _) => Action::ResumeAdaptation(v1::ResumeAdaptation {}),
        ("set-variant", Some(variant_id)) => Action::SetVariant(v1::SetVariant { variant_id }),
        ("set-params", _) if !body.params.is_empty() => Action::SetParams(v1::SetParams {
            params: body.params.into_iter().collect(),
        }),
        _ => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "action: emergency-stop, pause, resume, set-variant (with variant_id) or \
                 set-params (with params)",
            ));
        }
    };
    let reason = if body.reason.is_empty() {
        format!("operator {}", body.action)
    } else {
        body.reason
    };
    let enforce = v1::Enforce {
        reason,
        action: Some(action),
    };
    submit(
        &shared,
        &caller,
        &tenant,
        GovernanceCommand::Enforce(enforce),
    )
    .await
}

/// `GET …/audit`: the tenant's chain as stored (unverified).
async fn audit(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Answer {
    let tenant = served(&shared, &caller, &tenant).await?;
    let log = shared
        .governance
        .store()
        .open(&tenant)
        .await
        .map_err(|e| audit_failure(&e))?;
    let records = log.records().await.map_err(|e| audit_failure(&e))?;
    Ok(Json(json!({ "records": records_json(&records) })).into_response())
}

fn audit_failure(error: &AuditLogError) -> Refusal {
    match error {
        AuditLogError::Chain(chain) => Refusal(Box::new(
            (
                StatusCode::CONFLICT,
                Json(json!({
                    "ok": false,
                    "first_bad_seq": chain.first_bad_seq,
                    "reason": chain.reason.to_string(),
                })),
            )
                .into_response(),
        )),
        other => problem(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// `GET …/audit/verify`: 200 with the record count when the chain verifies, 409 naming the first
/// bad record otherwise.
async fn audit_verify(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Answer {
    let tenant = own_tenant(&caller, &tenant)?;
    let records = shared
        .governance
        .store()
        .verify(&tenant)
        .await
        .map_err(|e| audit_failure(&e))?;
    Ok(Json(json!({ "ok": true, "records": records.len() })).into_response())
}
