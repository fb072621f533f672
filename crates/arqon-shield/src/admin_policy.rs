//! The policy admin API (`specs/policy.md`, "Admin API"): deploy a module as a scope's chain (hot
//! reload, refused modules change nothing) and list the chains in force with each module's SHA-256.
//!
//! Merged into the admin router (`admin.rs`), so its token check runs first (401 without a valid
//! token, 403 for roles other than admin/operator); these routes then require role `admin`.
//! The console's view of a tenant's chains (`GET /admin/v1/tenants/{tenant}/policies`) adds each
//! chain's block count and the deploys made through this API since the node started.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use arqon_auth::Role;
use arqon_policy::{Chain, ModuleListing, ModuleSource, Scope, ScopeListing, sha256_hex};
use arqon_proto::names::TenantId;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin_caller::Caller;
use crate::clock::now_us;
use crate::state::Shared;

/// Longest module name a deploy may give.
const MAX_NAME: usize = 128;

/// Deploys kept per tenant in the history (the oldest go first).
const HISTORY_LEN: usize = 100;

/// `GET /admin/v1/policies`, `POST /admin/v1/policies/{global | tenant/<id>}` and the console's
/// `GET /admin/v1/tenants/{tenant}/policies`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/v1/policies", get(list))
        .route("/admin/v1/policies/{*scope}", post(deploy))
        .route("/admin/v1/tenants/{tenant}/policies", get(tenant_view))
        .layer(Extension(Arc::new(DeployHistory::default())))
}

/// The deploys this node's admin API took, per tenant, newest last: who, when, what, and the outcome
/// (`ok` or the refusal's code name).
#[derive(Debug, Default)]
struct DeployHistory(Mutex<HashMap<TenantId, VecDeque<Value>>>);

impl DeployHistory {
    fn record(&self, tenant: &TenantId, entry: Value) {
        let mut tenants = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let deploys = tenants.entry(tenant.clone()).or_default();
        if deploys.len() == HISTORY_LEN {
            deploys.pop_front();
        }
        deploys.push_back(entry);
    }

    fn of(&self, tenant: &TenantId) -> Vec<Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .map(|deploys| deploys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Who may touch which chain: role `admin` only, and only the chain of the token's own tenant. The
/// global chain runs on every tenant's messages, so no tenant's admin may replace it: it comes from
/// the node's config (`[policy] global`), which only the platform's operators control. The decision,
/// without I/O.
fn authorize(role: Role, own: &TenantId, scope: &str) -> Result<Scope, (StatusCode, &'static str)> {
    if role != Role::Admin {
        return Err((StatusCode::FORBIDDEN, "role admin required"));
    }
    if scope == "global" {
        return Err((
            StatusCode::FORBIDDEN,
            "the global chain is set in the node's config, not by a tenant admin",
        ));
    }
    let Some(tenant) = scope.strip_prefix("tenant/") else {
        return Err((StatusCode::NOT_FOUND, "scope must be global or tenant/<id>"));
    };
    match TenantId::parse(tenant) {
        Ok(tenant) if &tenant == own => Ok(Scope::Tenant(tenant.as_str().to_owned())),
        Ok(_) => Err((StatusCode::FORBIDDEN, "not the token's tenant")),
        Err(_) => Err((StatusCode::BAD_REQUEST, "invalid tenant id")),
    }
}

fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Global => "global".to_owned(),
        Scope::Tenant(tenant) => format!("tenant/{tenant}"),
    }
}

fn modules_json(modules: &[ModuleListing]) -> Vec<Value> {
    modules
        .iter()
        .map(|m| json!({ "name": m.name, "sha256": m.sha256, "failing_with": m.failing_with }))
        .collect()
}

/// Query of a deploy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployQuery {
    /// The module's name in listings (default: `module-<first 12 hex digits of its SHA-256>`).
    name: Option<String>,
}

const NO_POLICY: &str = "this node's policy hook takes no deploys (enable [admin] or [policy])";

/// `POST /admin/v1/policies/{scope}` with the module (Wasm binary or WAT text) as the body:
/// 200 with the new chain, 422 with the refusal's code name (the old chain stays in force).
async fn deploy(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(history): Extension<Arc<DeployHistory>>,
    Path(scope): Path<String>,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> Response {
    let scope = match authorize(caller.0.role, &caller.0.tenant, &scope) {
        Ok(scope) => scope,
        Err((status, message)) => return problem(status, message),
    };
    if shared.hooks.policy.wasm().is_none() {
        return problem(StatusCode::CONFLICT, NO_POLICY);
    }
    if body.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "the body must be the module");
    }
    let sha256 = sha256_hex(&body);
    let name = query
        .name
        .unwrap_or_else(|| format!("module-{}", &sha256[..12]));
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return problem(
            StatusCode::BAD_REQUEST,
            "name: 1 to 128 characters, no control characters",
        );
    }
    let task = Arc::clone(&shared);
    let target = scope.clone();
    let module_name = name.clone();
    let deployed = tokio::task::spawn_blocking(move || {
        task.hooks.policy.wasm().map(|policy| {
            policy.deploy(
                target,
                &[ModuleSource {
                    name: &module_name,
                    bytes: &body,
                }],
            )
        })
    })
    .await;
    let scope_name = scope_text(&scope);
    let entry = |outcome: &str, generation: Option<u64>| {
        json!({
            "at_us": now_us(),
            "by": caller.0.sub.as_str(),
            "scope": scope_name,
            "module": name,
            "sha256": sha256,
            "outcome": outcome,
            "generation": generation,
        })
    };
    match &deployed {
        Ok(Some(Ok(_))) => {
            let generation = shared.hooks.policy.wasm().and_then(|policy| {
                policy
                    .list()
                    .into_iter()
                    .find(|l| l.scope == scope)
                    .map(|l| l.generation)
            });
            history.record(&caller.0.tenant, entry("ok", generation));
        }
        Ok(Some(Err(error))) => history.record(&caller.0.tenant, entry(error.code_name(), None)),
        _ => {}
    }
    let scope = scope_name;
    match deployed {
        Ok(Some(Ok(modules))) => {
            tracing::info!(%scope, module = %name, by = %caller.0.sub.as_str(), "policy deployed");
            Json(json!({ "ok": true, "scope": scope, "modules": modules_json(&modules) }))
                .into_response()
        }
        Ok(Some(Err(error))) => {
            tracing::warn!(%scope, module = %name, code = error.code_name(), "policy deploy refused");
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "ok": false,
                    "scope": scope,
                    "module": name,
                    "code": error.code_name(),
                    "error": error.to_string(),
                })),
            )
                .into_response()
        }
        Ok(None) => problem(StatusCode::CONFLICT, NO_POLICY),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "deploy task failed"),
    }
}

fn listing_json(listing: &ScopeListing) -> Value {
    json!({
        "scope": scope_text(&listing.scope),
        "generation": listing.generation,
        "modules": modules_json(&listing.modules),
    })
}

/// `GET /admin/v1/policies`: the global chain and the caller's tenant's chain, in force now.
async fn list(State(shared): State<Arc<Shared>>, Extension(caller): Extension<Caller>) -> Response {
    let own_scope = format!("tenant/{}", caller.0.tenant.as_str());
    if let Err((status, message)) = authorize(caller.0.role, &caller.0.tenant, &own_scope) {
        return problem(status, message);
    }
    let Some(policy) = shared.hooks.policy.wasm() else {
        return problem(StatusCode::CONFLICT, NO_POLICY);
    };
    let own = Scope::Tenant(caller.0.tenant.as_str().to_owned());
    let chains: Vec<Value> = policy
        .list()
        .iter()
        .filter(|l| l.scope == Scope::Global || l.scope == own)
        .map(listing_json)
        .collect();
    Json(json!({ "chains": chains })).into_response()
}

/// `GET /admin/v1/tenants/{tenant}/policies` (the console): the global chain and the tenant's, each
/// with its block count, and the tenant's deploy history. The global chain judges every tenant's
/// messages, so its count is not shown to a tenant's admin (`blocked: null`).
async fn tenant_view(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Extension(history): Extension<Arc<DeployHistory>>,
    Path(tenant): Path<String>,
) -> Response {
    let scope = match authorize(caller.0.role, &caller.0.tenant, &format!("tenant/{tenant}")) {
        Ok(scope) => scope,
        Err((status, message)) => return problem(status, message),
    };
    // One snapshot of both chains, so each row's modules, generation and count belong together.
    let chains: Vec<Value> = match shared.hooks.policy.wasm() {
        None => Vec::new(),
        Some(policy) => {
            let (global, own) = policy.set().snapshot(caller.0.tenant.as_str());
            let row = |scope: Scope, chain: &Chain, blocked: Value| {
                let mut row = listing_json(&ScopeListing {
                    scope,
                    generation: chain.generation(),
                    modules: chain.listing(),
                });
                row["blocked"] = blocked;
                row
            };
            std::iter::once(row(Scope::Global, &global, Value::Null))
                .chain(own.map(|chain| row(scope.clone(), &chain, json!(chain.blocked()))))
                .collect()
        }
    };
    Json(json!({
        "tenant": caller.0.tenant.as_str(),
        "deployable": shared.hooks.policy.wasm().is_some(),
        "chains": chains,
        "history": history.of(&caller.0.tenant),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap_or_else(|_| unreachable!())
    }

    // AC-POLICY-18
    #[test]
    fn only_admins_deploy_and_only_to_their_own_tenant() {
        let acme = tenant("acme");
        // No tenant's admin may replace the chain every tenant runs.
        assert_eq!(
            authorize(Role::Admin, &acme, "global").map_err(|e| e.0),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            authorize(Role::Admin, &acme, "tenant/acme"),
            Ok(Scope::Tenant("acme".to_owned()))
        );
        assert_eq!(
            authorize(Role::Admin, &acme, "tenant/other").map_err(|e| e.0),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            authorize(Role::Admin, &acme, "tenant/Bad Id").map_err(|e| e.0),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            authorize(Role::Admin, &acme, "tenants").map_err(|e| e.0),
            Err(StatusCode::NOT_FOUND)
        );
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Admin) {
            assert_eq!(
                authorize(role, &acme, "tenant/acme").map_err(|e| e.0),
                Err(StatusCode::FORBIDDEN),
                "{role:?}"
            );
        }
    }
}
