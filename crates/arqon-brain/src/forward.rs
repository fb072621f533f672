//! Governance calls that reach a node which is not the tenant's writer, carried over the spine to
//! the writer and answered back (`specs/lease.md`, "Forwarding"), so an operator may use any node.
//!
//! A request is one message on `arqon.v1.<tenant>.gov.cmd`: header [`OP_HEADER`] (`submit` or
//! `snapshot`) and [`REQUEST_HEADER`] (an id unique to the asking node); for `submit` the payload
//! is the command as on `gov.up` (an encoded envelope stamped with the principal, the role in
//! [`ROLE_HEADER`]). Only the writer's driver listens. Its [`Answer`], JSON, goes to
//! `arqon.v1.<tenant>.gov.reply` with the same request id; the asker waits for it at most
//! [`FORWARD_WAIT`], and a silent writer (a failover in progress) is reported as no writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arqon_core::audit::AuditRecord;
use arqon_core::governance::Principal;
use arqon_core::governance::checkpoint::Checkpoint;
use arqon_core::subject::Subject;
use arqon_proto::GovernanceCommand;
use arqon_proto::names::TenantId;
use arqon_proto::outbound::{encode_envelope, envelope};
use arqon_proto::v1::{ErrorCode, Header};
use arqon_spine::{HeaderError, Headers, Message, Spine, SpineError, Subscription};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::governance::{Applied, DriverCommand, ROLE_HEADER, decode_command};

/// Spine header of a forwarded request: what it asks (`submit` or `snapshot`).
pub const OP_HEADER: &str = "arqon-op";
/// Spine header of a forwarded request and of its answer: the request's id.
pub const REQUEST_HEADER: &str = "arqon-request";
/// How long a node waits for the writer's answer.
pub const FORWARD_WAIT: Duration = Duration::from_secs(5);

const SUBMIT: &str = "submit";
const SNAPSHOT: &str = "snapshot";

/// The writer's answer to a forwarded request.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A submitted command's outcome: the records stored and the refusals (code, message).
    Applied {
        /// The audit records stored, in order.
        records: Vec<AuditRecord>,
        /// The refusals addressed to the caller.
        refusals: Vec<(i32, String)>,
    },
    /// The control plane's state.
    Snapshot(Checkpoint),
    /// The writer's driver failed; in words.
    Failed(String),
}

/// Why a forwarded request got no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The spine refused the request.
    #[error("spine: {0}")]
    Spine(#[from] SpineError),
    /// A header could not be set (a node id that is no header value).
    #[error("header: {0}")]
    Header(#[from] HeaderError),
    /// No writer answered within [`FORWARD_WAIT`].
    #[error("no governance writer answered within {0:?}")]
    NoAnswer(Duration),
}

/// What an asking node sends.
#[derive(Debug)]
pub enum Request {
    /// Run a command as `from`.
    Submit {
        /// The principal.
        from: Principal,
        /// The command.
        message: GovernanceCommand,
    },
    /// Read the control plane's state.
    Snapshot,
}

/// Sends a node's forwarded requests; request ids are the node's id and a counter.
pub struct Asker {
    spine: Arc<dyn Spine>,
    node_id: String,
    next: AtomicU64,
}

impl std::fmt::Debug for Asker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asker")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Asker {
    /// An asker on `spine` for the node `node_id`.
    pub fn new(spine: Arc<dyn Spine>, node_id: String) -> Self {
        Self {
            spine,
            node_id,
            next: AtomicU64::new(1),
        }
    }

    /// Sends `request` to `tenant`'s writer and waits for its answer.
    pub async fn ask(&self, tenant: &TenantId, request: Request) -> Result<Answer, ForwardError> {
        let id = format!(
            "{}-{}",
            self.node_id,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        // Subscribed before the request goes out, so the answer cannot be missed.
        let mut replies = self.spine.subscribe(&Subject::gov_reply(tenant)).await?;
        let (op, headers, payload) = match request {
            Request::Submit { from, message } => {
                let header = Header {
                    protocol_version: 1,
                    tenant_id: tenant.as_str().to_owned(),
                    sender_user_id: from.user.as_str().to_owned(),
                    correlation_id: id.clone(),
                    ..Header::default()
                };
                let payload = encode_envelope(&envelope(header, message.into_body()));
                let headers = Headers::new().with(ROLE_HEADER, from.role.as_str())?;
                (SUBMIT, headers, payload)
            }
            Request::Snapshot => (SNAPSHOT, Headers::new(), Bytes::new()),
        };
        let headers = headers.with(OP_HEADER, op)?.with(REQUEST_HEADER, &id)?;
        self.spine
            .publish(&Subject::gov_cmd(tenant), headers, payload)
            .await?;
        let answer = tokio::time::timeout(FORWARD_WAIT, answer_for(&mut replies, &id))
            .await
            .map_err(|_| ForwardError::NoAnswer(FORWARD_WAIT))?;
        answer.ok_or(ForwardError::NoAnswer(FORWARD_WAIT))
    }
}

/// The first answer on `replies` that carries request `id`.
async fn answer_for(replies: &mut Subscription, id: &str) -> Option<Answer> {
    loop {
        let message = replies.recv().await?;
        if message.headers.get(REQUEST_HEADER) != Some(id) {
            continue;
        }
        return Some(
            serde_json::from_slice(&message.payload)
                .unwrap_or_else(|e| Answer::Failed(format!("undecodable answer: {e}"))),
        );
    }
}

impl Answer {
    /// The outcome of a submit, or the writer's failure in words.
    pub fn into_applied(self) -> Result<Applied, String> {
        match self {
            Self::Applied { records, refusals } => Ok(Applied {
                records,
                refusals: refusals
                    .into_iter()
                    .map(|(code, message)| {
                        (
                            ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified),
                            message,
                        )
                    })
                    .collect(),
            }),
            Self::Snapshot(_) => Err("a snapshot answers a submit".into()),
            Self::Failed(reason) => Err(reason),
        }
    }

    /// The checkpoint of a snapshot, or the writer's failure in words.
    pub fn into_snapshot(self) -> Result<Checkpoint, String> {
        match self {
            Self::Snapshot(checkpoint) => Ok(checkpoint),
            Self::Applied { .. } => Err("an outcome answers a snapshot".into()),
            Self::Failed(reason) => Err(reason),
        }
    }
}

/// Answers `tenant`'s forwarded requests through the writer's driver (`commands`) until the task
/// is aborted (the node stops being the writer). Live when this returns.
pub async fn serve(
    spine: Arc<dyn Spine>,
    tenant: TenantId,
    commands: mpsc::Sender<DriverCommand>,
) -> Result<JoinHandle<()>, SpineError> {
    let mut requests = spine.subscribe(&Subject::gov_cmd(&tenant)).await?;
    Ok(tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let Some(id) = request.headers.get(REQUEST_HEADER).map(str::to_owned) else {
                continue;
            };
            let answer = handle(&tenant, &request, &commands).await;
            let payload = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
            let Ok(headers) = Headers::new().with(REQUEST_HEADER, &id) else {
                continue;
            };
            if let Err(error) = spine
                .publish(&Subject::gov_reply(&tenant), headers, payload)
                .await
            {
                tracing::warn!(tenant = %tenant, %error, "forwarded governance answer not sent");
            }
        }
    }))
}

async fn handle(
    tenant: &TenantId,
    request: &Message,
    commands: &mpsc::Sender<DriverCommand>,
) -> Answer {
    let stopped = || Answer::Failed("the writer's driver stopped".into());
    match request.headers.get(OP_HEADER) {
        Some(SUBMIT) => {
            let (from, message) = match decode_command(tenant, request) {
                Ok((from, message, _)) => (from, message),
                Err(reason) => return Answer::Failed(format!("bad forwarded command: {reason}")),
            };
            let (reply, outcome) = oneshot::channel();
            let command = DriverCommand::Submit {
                from,
                message,
                reply,
            };
            if commands.send(command).await.is_err() {
                return stopped();
            }
            match outcome.await {
                Ok(Ok(applied)) => Answer::Applied {
                    records: applied.records,
                    refusals: applied
                        .refusals
                        .into_iter()
                        .map(|(code, message)| (code as i32, message))
                        .collect(),
                },
                Ok(Err(reason)) => Answer::Failed(reason),
                Err(_) => stopped(),
            }
        }
        Some(SNAPSHOT) => {
            let (reply, copy) = oneshot::channel();
            if commands
                .send(DriverCommand::Snapshot { reply })
                .await
                .is_err()
            {
                return stopped();
            }
            match copy.await {
                // The seq is not the point of a read; 0 keeps the checkpoint within any chain.
                Ok(control) => Answer::Snapshot(control.checkpoint(0)),
                Err(_) => stopped(),
            }
        }
        _ => Answer::Failed("unknown forwarded operation".into()),
    }
}
