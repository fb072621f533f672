//! `GET /admin/v1/tenants/{tenant}/rooms/{room}/history?last=N`: a room's newest messages for an
//! operator of that tenant (`specs/history.md`, what `arq history` reads). Behind the admin token
//! check; a token of another tenant is refused (403).

use std::sync::Arc;

use arqon_core::subject::Subject;
use arqon_proto::names::RoomName;
use arqon_proto::v1::envelope::Body;
use arqon_spine::HistoryQuery;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin_caller::{Caller, Refusal, own_tenant, problem};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/admin/v1/tenants/{tenant}/rooms/{room}/history",
        get(history),
    )
}

#[derive(Debug, Deserialize)]
struct Params {
    /// How many of the newest messages (1..=1000, default 20).
    last: Option<u32>,
}

async fn history(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((tenant, room)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Response, Refusal> {
    let tenant = own_tenant(&caller, &tenant)?;
    let room = RoomName::parse(&room)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("invalid room: {e}")))?;
    let last = params.last.unwrap_or(20);
    if !(1..=arqon_proto::MAX_HISTORY_LAST).contains(&last) {
        return Err(problem(StatusCode::BAD_REQUEST, "last must be 1..=1000"));
    }
    let subject = Subject::room(&tenant, &room);
    let query = HistoryQuery::Last {
        count: usize::try_from(last).unwrap_or(usize::MAX),
    };
    let Some(page) = crate::history::read(
        shared.hub.spine().as_ref(),
        &subject,
        query,
        &shared.metrics,
    )
    .await
    else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the tenant keeps no history, or it cannot be read now",
        ));
    };
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|stored| {
            let envelope = arqon_proto::decode_envelope(stored.payload.clone(), usize::MAX).ok();
            let header = envelope.as_ref().and_then(|e| e.header.clone()).unwrap_or_default();
            let message = match envelope.and_then(|e| e.body) {
                Some(Body::Message(m)) => m,
                _ => arqon_proto::v1::Message::default(),
            };
            let text = std::str::from_utf8(&message.payload).ok();
            json!({
                "offset": stored.offset,
                "sender": header.sender_user_id,
                "timestamp_us": header.timestamp_us,
                "content_type": message.content_type,
                "text": text,
                "payload_base64": base64::engine::general_purpose::STANDARD.encode(&message.payload),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant.as_str(),
        "room": room.as_str(),
        "epoch": page.read.epoch,
        "position": page.read.last_offset,
        "retained": page.read.retained_total,
        "messages": messages,
    }))
    .into_response())
}
