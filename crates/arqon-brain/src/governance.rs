//! The Brain's governance driver: feeds a tenant's `gov.up` messages to `arqon_core::governance` and
//! executes the effects (audit append, `gov.down` publish, error replies, counters).
//!
//! Wire contract with the Shield (`specs/governance.md`, "Shield and Brain"):
//! - `arqon.v1.<tenant>.gov.up` carries an encoded `v1::Envelope` whose header the Shield stamped
//!   (tenant, sender user, sender session) and whose body is a governance body, with the Spine header
//!   [`ROLE_HEADER`] holding the sender token's `role` claim.
//! - `arqon.v1.<tenant>.gov.down` carries encoded envelopes from the control plane: governance bodies
//!   for every data plane of the tenant, and `Error` replies that carry [`TO_SESSION_HEADER`] and are
//!   meant only for that session.
//!
//! The driver decides nothing: translation errors become [`GovEvent::Invalid`], everything else goes
//! to [`ControlPlane::handle`]. An audit append that fails stops the effects that follow it, so no
//! message is published without its audit record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arqon_core::audit::AuditRecord;
use arqon_core::governance::checkpoint::Resumed;
use arqon_core::governance::{ControlPlane, GovEffect, GovEvent, GovRole, Principal, Rules};
use arqon_core::subject::Subject;
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::outbound::{ack, encode_envelope, envelope, error, server_header};
use arqon_proto::v1::{self, Envelope, ErrorCode};
use arqon_spine::{Headers, Message, Spine, SpineError, Subscription};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::audit_log::{AuditLog, AuditLogError};
use crate::trace_headers::{continue_from, with_current_trace};

/// Spine header on `gov.up`: the sender token's `role` claim, set by the Shield.
pub const ROLE_HEADER: &str = "arqon-role";
/// Spine header on a `gov.down` error reply: the only session it is for.
pub const TO_SESSION_HEADER: &str = "arqon-to-session";
/// Largest `gov.up` message the driver decodes.
pub const MAX_GOV_MESSAGE_BYTES: usize = 64 * 1024;

/// The time source of a driver, in µs since the Unix epoch (a fixed clock in tests).
pub type Now = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock.
pub fn system_now() -> Now {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    })
}

/// Why the driver stopped executing effects.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceDriverError {
    /// The audit log could not store a record; the effects after it were not executed.
    #[error("audit: {0}")]
    Audit(#[from] AuditLogError),
    /// The Spine refused a publish or a subscription.
    #[error("spine: {0}")]
    Spine(#[from] SpineError),
    /// A local command's effects failed; the driver stopped (the reason was sent to the caller).
    #[error("driver stopped: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },
}

/// What executing one event did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// The audit records stored, in order.
    pub records: Vec<AuditRecord>,
    /// The errors addressed to the sender (published to its session when it came over the Spine).
    pub refusals: Vec<(ErrorCode, String)>,
}

/// A request to a running driver from this node.
#[derive(Debug)]
pub enum DriverCommand {
    /// Handle a command from a local principal (see [`TenantDriver::submit`]).
    Submit {
        /// The sender.
        from: Principal,
        /// The body.
        message: GovernanceCommand,
        /// Where the outcome goes; an error is the driver's failure, in words.
        reply: oneshot::Sender<Result<Applied, String>>,
    },
    /// Return a copy of the control plane's state.
    Snapshot {
        /// Where the copy goes.
        reply: oneshot::Sender<ControlPlane>,
    },
}

/// One tenant's control plane, its audit chain and its Spine subjects.
pub struct TenantDriver {
    control: ControlPlane,
    audit: AuditLog,
    spine: Arc<dyn Spine>,
    up: Subject,
    down: Subject,
    sent: u64,
    counters: BTreeMap<String, u64>,
}

impl std::fmt::Debug for TenantDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDriver")
            .field("tenant", self.control.tenant())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

/// Where the effects of one event go back to: the session that sent it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplyTo {
    session: String,
    pub(crate) correlation_id: String,
    message_id: String,
}

impl TenantDriver {
    /// A driver for `tenant` with `rules`, storing audit records in `audit`.
    pub fn new(tenant: TenantId, rules: Rules, audit: AuditLog, spine: Arc<dyn Spine>) -> Self {
        Self {
            up: Subject::gov_up(&tenant),
            down: Subject::gov_down(&tenant),
            control: ControlPlane::new(tenant, rules),
            audit,
            spine,
            sent: 0,
            counters: BTreeMap::new(),
        }
    }

    /// A driver for `tenant` that resumes from the newest checkpoint in `audit`
    /// ([`ControlPlane::resume`] decides how), and how it resumed.
    pub async fn resume(
        tenant: TenantId,
        rules: Rules,
        audit: AuditLog,
        spine: Arc<dyn Spine>,
    ) -> Result<(Self, Resumed), GovernanceDriverError> {
        let stored = audit.checkpoint().await?;
        let head = audit.next_seq().saturating_sub(1);
        let (control, resumed) = ControlPlane::resume(tenant.clone(), rules.clone(), stored, head);
        let mut driver = Self::new(tenant, rules, audit, spine);
        driver.control = control;
        Ok((driver, resumed))
    }

    /// The control plane's state (pending proposals, rollouts, paused, catalog version).
    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Counter values by `metric{label=value,…}`.
    pub fn counters(&self) -> &BTreeMap<String, u64> {
        &self.counters
    }

    /// Subscribes to the tenant's `gov.up`; the subscription is live when this returns.
    pub async fn subscribe(&self) -> Result<Subscription, GovernanceDriverError> {
        Ok(self.spine.subscribe(&self.up).await?)
    }

    /// Handles one `gov.up` message at `now_us`.
    pub async fn on_message(
        &mut self,
        message: &Message,
        now_us: u64,
    ) -> Result<Applied, GovernanceDriverError> {
        let (event, reply_to) = self.translate(message, now_us);
        // A traced governance message continues its trace here, and so do the messages it causes.
        let span = tracing::info_span!(
            "brain.governance.receive",
            tenant = %self.control.tenant(),
            trace_id = tracing::field::Empty
        );
        if continue_from(&span, &message.headers) {
            self.apply(event, &reply_to).instrument(span).await
        } else {
            self.apply(event, &reply_to).await
        }
    }

    /// Advances time to `now_us` (ramps, completed rollouts, capacity freed).
    pub async fn on_tick(&mut self, now_us: u64) -> Result<Applied, GovernanceDriverError> {
        self.apply(GovEvent::Tick { at_us: now_us }, &ReplyTo::default())
            .await
    }

    /// Handles a command from a principal on this node (the admin API behind `arq gov …`): the
    /// same decisions as over `gov.up`, but refusals come back in [`Applied::refusals`] instead of
    /// being published.
    pub async fn submit(
        &mut self,
        from: Principal,
        message: GovernanceCommand,
        now_us: u64,
    ) -> Result<Applied, GovernanceDriverError> {
        let event = GovEvent::Message {
            at_us: now_us,
            from,
            message,
        };
        self.apply(event, &ReplyTo::default()).await
    }

    /// Handles `gov.up` messages, local commands and a tick every `tick` until the subscription
    /// ends or an effect fails. Local commands stop being read once every sender is dropped.
    pub async fn run(
        mut self,
        mut subscription: Subscription,
        mut commands: mpsc::Receiver<DriverCommand>,
        tick: Duration,
        now: Now,
    ) -> Result<Self, GovernanceDriverError> {
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut local = true;
        loop {
            tokio::select! {
                message = subscription.recv() => match message {
                    Some(message) => {
                        self.on_message(&message, now()).await?;
                    }
                    None => return Ok(self),
                },
                command = commands.recv(), if local => match command {
                    Some(DriverCommand::Submit { from, message, reply }) => {
                        let applied = self.submit(from, message, now()).await;
                        let failed = applied.as_ref().err().map(ToString::to_string);
                        // The caller may have gone away; the decision stands either way.
                        let _ = reply.send(applied.map_err(|e| e.to_string()));
                        if let Some(reason) = failed {
                            tracing::error!(%reason, "governance driver stopped");
                            return Err(GovernanceDriverError::Stopped { reason });
                        }
                    }
                    Some(DriverCommand::Snapshot { reply }) => {
                        let _ = reply.send(self.control.clone());
                    }
                    None => local = false,
                },
                _ = ticks.tick() => {
                    self.on_tick(now()).await?;
                }
            }
        }
    }

    /// Turns a bus message into an event; anything malformed becomes [`GovEvent::Invalid`].
    fn translate(&self, message: &Message, now_us: u64) -> (GovEvent, ReplyTo) {
        match decode_command(self.control.tenant(), message) {
            Ok((from, command, reply_to)) => (
                GovEvent::Message {
                    at_us: now_us,
                    from,
                    message: command,
                },
                reply_to,
            ),
            Err(reason) => (
                GovEvent::Invalid {
                    at_us: now_us,
                    reason: reason.to_owned(),
                },
                ReplyTo::default(),
            ),
        }
    }

    /// Runs `event` through the control plane and executes its effects in order.
    async fn apply(
        &mut self,
        event: GovEvent,
        reply_to: &ReplyTo,
    ) -> Result<Applied, GovernanceDriverError> {
        let now_us = match &event {
            GovEvent::Message { at_us, .. }
            | GovEvent::Invalid { at_us, .. }
            | GovEvent::Tick { at_us } => *at_us,
        };
        let mut applied = Applied::default();
        let effects = self.control.handle(event);
        // The event's last record carries the state after it, so a new writer resumes from it.
        let last_audit = effects
            .iter()
            .rposition(|e| matches!(e, GovEffect::Audit(_)));
        for (index, effect) in effects.into_iter().enumerate() {
            match effect {
                GovEffect::Audit(entry) => {
                    let checkpoint = (Some(index) == last_audit)
                        .then(|| self.control.checkpoint(self.audit.next_seq()));
                    let record = self.audit.append(entry, checkpoint.as_ref()).await?;
                    applied.records.push(record);
                }
                GovEffect::Publish(command) => {
                    let id = self.next_id(now_us);
                    let header = server_header(self.control.tenant(), id, "", now_us);
                    let bytes = encode_envelope(&envelope(header, command.into_body()));
                    self.spine
                        .publish(&self.down, with_current_trace(Headers::new()), bytes)
                        .await?;
                }
                GovEffect::Reply { code, message, .. } => {
                    applied.refusals.push((code, message.clone()));
                    self.answer(reply_to, now_us, |header| error(header, code, message, 0))
                        .await?;
                }
                GovEffect::Count { metric, labels } => {
                    let key = format!(
                        "{metric}{{{}={},{}={}}}",
                        labels[0].0, labels[0].1, labels[1].0, labels[1].1
                    );
                    *self.counters.entry(key).or_default() += 1;
                }
            }
        }
        // A message a session sent gets one answer: its refusal above, or this ack.
        if applied.refusals.is_empty() {
            let acked = reply_to.message_id.clone();
            self.answer(reply_to, now_us, |header| ack(header, acked))
                .await?;
        }
        Ok(applied)
    }

    /// Publishes an answer to the session a `gov.up` message came from (only to it); nothing for
    /// local commands, which get their outcome in [`Applied`].
    async fn answer(
        &mut self,
        reply_to: &ReplyTo,
        now_us: u64,
        build: impl FnOnce(v1::Header) -> Envelope,
    ) -> Result<(), GovernanceDriverError> {
        if reply_to.session.is_empty() {
            return Ok(());
        }
        let Ok(headers) = Headers::new().with(TO_SESSION_HEADER, &reply_to.session) else {
            return Ok(());
        };
        let headers = with_current_trace(headers);
        let id = self.next_id(now_us);
        let header = server_header(self.control.tenant(), id, &reply_to.correlation_id, now_us);
        let bytes = encode_envelope(&build(header));
        self.spine.publish(&self.down, headers, bytes).await?;
        Ok(())
    }

    fn next_id(&mut self, now_us: u64) -> String {
        self.sent += 1;
        format!("gov-{now_us}-{}", self.sent)
    }
}

/// Reads a governance message of the spine (`gov.up`, or a forwarded `gov.cmd`): an encoded
/// envelope of `tenant` with a valid sender and a governance body, and the sender's role in
/// [`ROLE_HEADER`]; the reason in words when it is not one.
pub(crate) fn decode_command(
    tenant: &TenantId,
    message: &Message,
) -> Result<(Principal, GovernanceCommand, ReplyTo), &'static str> {
    if message.payload.len() > MAX_GOV_MESSAGE_BYTES {
        return Err("too large");
    }
    let Ok(Envelope {
        header: Some(header),
        body: Some(body),
    }) = Envelope::decode(message.payload.clone())
    else {
        return Err("undecodable envelope");
    };
    if header.tenant_id != tenant.as_str() {
        return Err("tenant mismatch");
    }
    let Ok(user) = UserId::parse(&header.sender_user_id) else {
        return Err("no valid sender");
    };
    let Some(command) = GovernanceCommand::from_body(body) else {
        return Err("not a governance body");
    };
    let role = GovRole::from_claim(message.headers.get(ROLE_HEADER).unwrap_or(""));
    let reply_to = ReplyTo {
        session: header.sender_session_id,
        correlation_id: header.correlation_id,
        message_id: header.message_id,
    };
    Ok((Principal { user, role }, command, reply_to))
}
