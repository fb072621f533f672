//! The read-only admin endpoints behind the admin console (`specs/console.md`): who the token is, this
//! node's health, the tenant's connections, rooms with presence, and its audit chain with the
//! verification result.
//!
//! Merged into the admin router (`admin.rs`), so its token check runs first (401 without a valid
//! token, 403 for roles other than admin/operator). Every tenant route answers for the token's own
//! tenant only (403 for another): a tenant admin never sees another tenant's data.

use std::sync::Arc;

use arqon_brain::audit_log::{AuditLogError, AuditStore, FileAuditLog, JetStreamAuditLog};
use arqon_core::audit::AuditRecord;
use arqon_proto::names::TenantId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::admin_caller::{Caller, Refusal, own_tenant, problem, records_json};
use crate::state::Shared;

/// `GET /admin/v1/whoami`, `GET /admin/v1/node` and the tenant routes below
/// `/admin/v1/tenants/{tenant}/`: `connections`, `rooms`, `audit`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/v1/whoami", get(whoami))
        .route("/admin/v1/node", get(node))
        .route("/admin/v1/tenants/{tenant}/connections", get(connections))
        .route("/admin/v1/tenants/{tenant}/rooms", get(rooms))
        .route("/admin/v1/tenants/{tenant}/audit", get(audit))
}

/// The verified token: tenant, subject, role, and whether it may deploy policies (role `admin`).
async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    let claims = &caller.0;
    Json(json!({
        "tenant": claims.tenant.as_str(),
        "sub": claims.sub.as_str(),
        "role": claims.role.as_str(),
        "may_deploy": claims.role == arqon_auth::Role::Admin,
        "exp": claims.exp,
    }))
    .into_response()
}

/// This node: its id and whether its spine is connected (`/healthz` and `/readyz` say the rest).
async fn node(State(shared): State<Arc<Shared>>) -> Response {
    let spine = shared.hub.spine().status();
    Json(json!({
        "id": shared.settings.node_id,
        "spine": { "connected": spine.connected, "reconnects": spine.reconnects },
    }))
    .into_response()
}

/// The tenant's open connections on this node, in total and per user.
async fn connections(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Result<Response, Refusal> {
    let tenant = own_tenant(&caller, &tenant)?;
    let (open, users) = {
        let admission = shared
            .admission
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            admission.tenant_connections(&tenant),
            admission.tenant_users(&tenant),
        )
    };
    let users: Vec<Value> = users
        .iter()
        .map(|(user, open)| json!({ "user": user.as_str(), "connections": open }))
        .collect();
    Ok(Json(json!({
        "tenant": tenant.as_str(),
        "node": shared.settings.node_id,
        "open": open,
        "users": users,
    }))
    .into_response())
}

/// The tenant's rooms with local members on this node, each with its presence members (on every
/// node, as this node's presence sees them).
async fn rooms(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Result<Response, Refusal> {
    let tenant = own_tenant(&caller, &tenant)?;
    let mut rooms = Vec::new();
    for (room, local) in shared.hub.tenant_rooms(&tenant).await {
        let members: Vec<Value> = shared
            .presence
            .driver()
            .members(&tenant, &room)
            .await
            .iter()
            .map(|m| {
                json!({
                    "user": m.user.as_str(),
                    "session": m.session.0,
                    "node": m.node.0,
                    "joined_at_us": m.joined_at_us,
                    "meta": m.meta.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()),
                })
            })
            .collect();
        rooms.push(json!({ "room": room.as_str(), "local_members": local, "members": members }));
    }
    Ok(Json(json!({ "tenant": tenant.as_str(), "rooms": rooms })).into_response())
}

/// The records as stored, without verifying them (a broken chain is still shown).
async fn stored_records(
    store: &AuditStore,
    tenant: &TenantId,
) -> Result<Vec<AuditRecord>, AuditLogError> {
    match store {
        AuditStore::Dir(dir) => {
            match FileAuditLog::read_path(&FileAuditLog::path_for(dir, tenant)).await {
                Err(AuditLogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(Vec::new())
                }
                read => read,
            }
        }
        AuditStore::JetStream(client) => Ok(JetStreamAuditLog::open(client.clone(), tenant)
            .await?
            .records()
            .await?
            .0),
    }
}

/// The tenant's audit chain as stored, and the verdict of verifying it (`arq gov audit --verify`'s):
/// `{ok: true, records}` or `{ok: false, first_bad_seq, reason}`.
async fn audit(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Result<Response, Refusal> {
    let tenant = own_tenant(&caller, &tenant)?;
    let store = shared.governance.store();
    let failed = |e: AuditLogError| problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let records = match stored_records(store, &tenant).await {
        Ok(records) => records,
        // A line that is no record at all: nothing to list; the verification names it.
        Err(AuditLogError::Chain(_)) => Vec::new(),
        Err(other) => return Err(failed(other)),
    };
    let verification = match store.verify(&tenant).await {
        Ok(verified) => json!({ "ok": true, "records": verified.len() }),
        Err(AuditLogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            json!({ "ok": true, "records": 0 })
        }
        Err(AuditLogError::Chain(chain)) => json!({
            "ok": false,
            "first_bad_seq": chain.first_bad_seq,
            "reason": chain.reason.to_string(),
        }),
        Err(other) => return Err(failed(other)),
    };
    Ok(Json(json!({
        "tenant": tenant.as_str(),
        "records": records_json(&records),
        "verification": verification,
    }))
    .into_response())
}
