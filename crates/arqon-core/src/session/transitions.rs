//! How the Session machine moves: the step for each kind of event and the small helpers that build
//! the outcome (errors, rejections, closes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arqon_proto::names::RoomName;

use crate::limits::{Throttled, TokenBucket, Verdict as Admission};
use crate::machine::{Machine, Step};

use super::types::{
    CloseReason, ErrorCode, Identity, Live, PolicyVerdict, RefreshOutcome, SessionEffect,
    SessionEvent, SessionLimits, SessionMachine, SessionRejection, SessionState, Stamp,
};

pub(super) type Outcome = Step<SessionState, SessionEffect>;

pub(super) fn step(state: SessionState, effects: Vec<SessionEffect>) -> Outcome {
    Step { state, effects }
}

pub(super) fn error(code: ErrorCode, request: Option<u64>) -> SessionEffect {
    SessionEffect::SendError {
        code,
        request,
        retry_after_ms: None,
    }
}

/// Whether a refused frame broke the protocol (and counts against `max_protocol_errors`), rather
/// than asking for something invalid (a bad room name, a payload over the limit).
pub(super) fn breaks_protocol(code: ErrorCode) -> bool {
    !matches!(code, ErrorCode::InvalidRoom | ErrorCode::PayloadTooLarge)
}

pub(super) fn rate_limited(request: u64, throttled: Throttled) -> SessionEffect {
    SessionEffect::SendError {
        code: ErrorCode::RateLimited,
        request: Some(request),
        retry_after_ms: Some(throttled.retry_after_ms),
    }
}

pub(super) fn reject(
    status: u16,
    reason: &'static str,
    retry_after_ms: Option<u64>,
    why: CloseReason,
) -> Outcome {
    step(
        SessionState::Closed { reason: why },
        vec![SessionEffect::RejectUpgrade {
            status,
            reason,
            retry_after_ms,
        }],
    )
}

/// Closes a live session: leaves every room, then closes the socket when one is left.
pub(super) fn close(live: &Live, reason: CloseReason) -> Outcome {
    let mut effects = Vec::with_capacity(live.rooms.len() * 2 + 1);
    for room in live.rooms.iter() {
        effects.push(SessionEffect::Unsubscribe { room: room.clone() });
        effects.push(SessionEffect::PresenceLeave { room: room.clone() });
    }
    if let Some(code) = reason.close_code() {
        effects.push(SessionEffect::Close { code });
    }
    step(SessionState::Closed { reason }, effects)
}

/// Re-wraps a changed live session in the state kind it came from.
pub(super) fn keep(before: &SessionState, live: Live, effects: Vec<SessionEffect>) -> Outcome {
    let state = match before {
        SessionState::Draining { deadline_us, .. } => SessionState::Draining {
            live: Box::new(live),
            deadline_us: *deadline_us,
        },
        _ => SessionState::Active(Box::new(live)),
    };
    step(state, effects)
}

impl SessionMachine {
    /// The next time a `Tick` must be stepped for `live`.
    pub(super) fn deadline(&self, live: &Live, drain_deadline: Option<u64>) -> u64 {
        let heartbeat = live
            .last_seen_us
            .saturating_add(self.config.heartbeat_timeout_us);
        let due = heartbeat.min(live.token_expires_us);
        drain_deadline.map_or(due, |drain| due.min(drain))
    }

    pub(super) fn authenticated(
        &self,
        identity: &Identity,
        expires_us: u64,
        limits: SessionLimits,
        admission: Admission,
        now_us: u64,
    ) -> Outcome {
        if let Admission::Reject {
            retry_after_ms,
            reason,
        } = admission
        {
            return reject(
                503,
                reason.as_str(),
                Some(retry_after_ms),
                CloseReason::NotAdmitted(reason),
            );
        }
        if expires_us <= now_us {
            return reject(401, "expired", None, CloseReason::Unauthorized("expired"));
        }
        let live = Live {
            identity: identity.clone(),
            limits,
            rooms: Arc::new(BTreeSet::new()),
            recovering: BTreeMap::new(),
            token_expires_us: expires_us,
            last_seen_us: now_us,
            protocol_errors: 0,
            slow_drops: 0,
            published: 0,
            bucket: TokenBucket::new(limits.publish, now_us),
        };
        let at_us = self.deadline(&live, None);
        step(
            SessionState::Active(Box::new(live)),
            vec![
                SessionEffect::AcceptUpgrade,
                SessionEffect::SendWelcome {
                    heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                },
                SessionEffect::ScheduleTick { at_us },
            ],
        )
    }

    /// A client frame in `active` or `draining`; `live` is a copy already marked as seen.
    #[allow(clippy::too_many_lines)]
    pub(super) fn client_event(
        &self,
        before: &SessionState,
        mut live: Live,
        event: &SessionEvent,
    ) -> Outcome {
        let draining = matches!(before, SessionState::Draining { .. });
        match event {
            SessionEvent::Join {
                room,
                request,
                since,
                ..
            } => {
                if draining {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::ServerDraining, Some(*request))],
                    );
                }
                if live.rooms.contains(room) {
                    return keep(
                        before,
                        live,
                        vec![SessionEffect::SendAck { request: *request }],
                    );
                }
                if live.rooms.len() >= live.limits.max_rooms as usize {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::RoomLimit, Some(*request))],
                    );
                }
                Arc::make_mut(&mut live.rooms).insert(room.clone());
                if let Some(since) = since {
                    // The ack waits for the read: the join happens at the history's read point, so
                    // nothing the client publishes after the ack can fall before it.
                    let after = since.offset;
                    live.recovering
                        .insert(room.clone(), (*request, since.clone()));
                    let effects = vec![
                        SessionEffect::Subscribe {
                            room: room.clone(),
                            gated: true,
                        },
                        SessionEffect::PresenceJoin { room: room.clone() },
                        SessionEffect::FetchHistory {
                            room: room.clone(),
                            request: *request,
                            after,
                        },
                    ];
                    return keep(before, live, effects);
                }
                let effects = vec![
                    SessionEffect::Subscribe {
                        room: room.clone(),
                        gated: false,
                    },
                    SessionEffect::PresenceJoin { room: room.clone() },
                    SessionEffect::SendAck { request: *request },
                    SessionEffect::SendPresence {
                        room: room.clone(),
                        request: *request,
                        full: true,
                    },
                ];
                keep(before, live, effects)
            }
            SessionEvent::Leave { room, request, .. } => {
                live.recovering.remove(room);
                if !live.rooms.contains(room) {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::NotInRoom, Some(*request))],
                    );
                }
                Arc::make_mut(&mut live.rooms).remove(room);
                let effects = vec![
                    SessionEffect::Unsubscribe { room: room.clone() },
                    SessionEffect::PresenceLeave { room: room.clone() },
                    SessionEffect::SendAck { request: *request },
                ];
                keep(before, live, effects)
            }
            SessionEvent::Publish {
                room,
                request,
                payload_len,
                now_us,
            } => {
                let request = *request;
                if draining {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::ServerDraining, Some(request))],
                    );
                }
                if !live.rooms.contains(room) {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::NotInRoom, Some(request))],
                    );
                }
                if *payload_len > live.limits.max_payload_bytes {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::PayloadTooLarge, Some(request))],
                    );
                }
                if let Err(throttled) = live.bucket.try_take(*now_us) {
                    return keep(before, live, vec![rate_limited(request, throttled)]);
                }
                let effect = SessionEffect::ChargeTenant {
                    room: room.clone(),
                    request,
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::Heartbeat { request, .. } => keep(
                before,
                live,
                vec![SessionEffect::SendPong { request: *request }],
            ),
            SessionEvent::Governance { request, .. } => {
                // A draining node takes no new governance: the client sends it again from its
                // next node. Otherwise the writer decides, and its answer is the only reply.
                let effect = if draining {
                    error(ErrorCode::ServerDraining, Some(*request))
                } else {
                    SessionEffect::ForwardGovernance { request: *request }
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::HistoryRequest { room, request, .. } => {
                // The same checks as a join: the tenant is the session's (the shell builds the
                // subject from the verified identity) and a draining node takes no new reads.
                let effect = if draining {
                    error(ErrorCode::ServerDraining, Some(*request))
                } else {
                    SessionEffect::ReadHistory {
                        room: room.clone(),
                        request: *request,
                    }
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::PresenceRequest { room, request, .. } => {
                let effect = if live.rooms.contains(room) {
                    SessionEffect::SendPresence {
                        room: room.clone(),
                        request: *request,
                        full: false,
                    }
                } else {
                    error(ErrorCode::NotInRoom, Some(*request))
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::Refresh {
                outcome, request, ..
            } => self.refresh(before, live, outcome, *request, draining),
            SessionEvent::ProtocolError { code, request, .. } => {
                if *code == ErrorCode::FrameTooLarge {
                    return close(&live, CloseReason::FrameTooLarge);
                }
                // A well-formed request for a bad room or too large a payload is refused like any
                // other request; only frames that break the protocol count against its budget.
                if breaks_protocol(*code) {
                    live.protocol_errors = live.protocol_errors.saturating_add(1);
                    if live.protocol_errors > self.config.max_protocol_errors {
                        return close(&live, CloseReason::ProtocolErrors);
                    }
                }
                // Every refusal answers its request when its header could be read.
                keep(before, live, vec![error(*code, *request)])
            }
            _ => keep(before, live, Vec::new()),
        }
    }

    pub(super) fn refresh(
        &self,
        before: &SessionState,
        mut live: Live,
        outcome: &RefreshOutcome,
        request: u64,
        draining: bool,
    ) -> Outcome {
        if draining {
            return keep(
                before,
                live,
                vec![error(ErrorCode::ServerDraining, Some(request))],
            );
        }
        match outcome {
            RefreshOutcome::Expired => keep(
                before,
                live,
                vec![error(ErrorCode::TokenExpired, Some(request))],
            ),
            RefreshOutcome::Invalid(_) => keep(
                before,
                live,
                vec![error(ErrorCode::TokenInvalid, Some(request))],
            ),
            RefreshOutcome::Valid {
                tenant,
                user,
                expires_us,
            } => {
                if *tenant != live.identity.tenant || *user != live.identity.user {
                    return close(&live, CloseReason::Forbidden);
                }
                if *expires_us <= live.last_seen_us {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::TokenExpired, Some(request))],
                    );
                }
                live.token_expires_us = live.token_expires_us.max(*expires_us);
                let at_us = self.deadline(&live, None);
                keep(
                    before,
                    live,
                    vec![
                        SessionEffect::SendAck { request },
                        SessionEffect::ScheduleTick { at_us },
                    ],
                )
            }
        }
    }

    /// The tenant bucket's answer: throttled publishes get `RATE_LIMITED`, the rest go to policy.
    pub(super) fn tenant_budget(
        before: &SessionState,
        live: Live,
        room: &RoomName,
        request: u64,
        verdict: Result<(), Throttled>,
    ) -> Outcome {
        if let Err(throttled) = verdict {
            return keep(before, live, vec![rate_limited(request, throttled)]);
        }
        if !live.rooms.contains(room) {
            return keep(
                before,
                live,
                vec![error(ErrorCode::NotInRoom, Some(request))],
            );
        }
        let effect = SessionEffect::RunPolicy {
            room: room.clone(),
            request,
        };
        keep(before, live, vec![effect])
    }

    pub(super) fn verdict(
        before: &SessionState,
        mut live: Live,
        room: &RoomName,
        request: u64,
        verdict: PolicyVerdict,
        now_us: u64,
    ) -> Outcome {
        if let PolicyVerdict::Block(code) = verdict {
            return keep(before, live, vec![error(code, Some(request))]);
        }
        if !live.rooms.contains(room) {
            return keep(
                before,
                live,
                vec![error(ErrorCode::NotInRoom, Some(request))],
            );
        }
        live.published = live.published.wrapping_add(1);
        let stamp = Stamp {
            tenant: live.identity.tenant.clone(),
            sender: live.identity.user.clone(),
            session: live.identity.session,
            timestamp_us: now_us,
            default_twist_id: twist_id(live.identity.session, live.published),
        };
        let effects = vec![
            SessionEffect::Publish {
                room: room.clone(),
                request,
                stamp,
            },
            SessionEffect::SendAck { request },
        ];
        keep(before, live, effects)
    }

    /// The read of a recovering join: decide it, answer the join, and release the held messages.
    pub(super) fn history_read(
        before: &SessionState,
        mut live: Live,
        room: &RoomName,
        request: u64,
        read: Option<&crate::history::HistoryRead>,
    ) -> Outcome {
        let Some((joined, since)) = live.recovering.get(room).cloned() else {
            // Left (or closed) while reading: the hold went with the subscription.
            return keep(before, live, Vec::new());
        };
        if joined != request {
            return keep(before, live, Vec::new());
        }
        live.recovering.remove(room);
        let recovery = crate::history::recover(since.offset, &since.epoch, read);
        let after = recovery.live_after;
        let effects = vec![
            SessionEffect::SendAck { request },
            SessionEffect::SendPresence {
                room: room.clone(),
                request,
                full: true,
            },
            SessionEffect::SendRecovery {
                room: room.clone(),
                request,
                recovery,
            },
            SessionEffect::OpenGate {
                room: room.clone(),
                after,
            },
        ];
        keep(before, live, effects)
    }

    pub(super) fn tick(&self, before: &SessionState, live: &Live, now_us: u64) -> Outcome {
        let drain_deadline = match before {
            SessionState::Draining { deadline_us, .. } => Some(*deadline_us),
            _ => None,
        };
        if now_us >= live.token_expires_us {
            return close(live, CloseReason::TokenExpired);
        }
        if now_us
            >= live
                .last_seen_us
                .saturating_add(self.config.heartbeat_timeout_us)
        {
            return close(live, CloseReason::HeartbeatTimeout);
        }
        if drain_deadline.is_some_and(|deadline| now_us >= deadline) {
            return close(live, CloseReason::Drained);
        }
        let at_us = self.deadline(live, drain_deadline);
        keep(
            before,
            live.clone(),
            vec![SessionEffect::ScheduleTick { at_us }],
        )
    }

    pub(super) fn live_event(
        &self,
        before: &SessionState,
        live: &Live,
        event: &SessionEvent,
    ) -> Result<Outcome, SessionRejection> {
        Ok(match event {
            SessionEvent::Tick { now_us } => self.tick(before, live, *now_us),
            SessionEvent::SocketClosed => close(live, CloseReason::ClientGone),
            SessionEvent::SlowConsumer => {
                let mut live = live.clone();
                live.slow_drops = live.slow_drops.saturating_add(1);
                if live.slow_drops > self.config.slow_consumer_threshold {
                    return Ok(close(&live, CloseReason::SlowConsumer));
                }
                keep(before, live, Vec::new())
            }
            SessionEvent::PolicyVerdict {
                room,
                request,
                verdict,
                now_us,
            } => Self::verdict(before, live.clone(), room, *request, *verdict, *now_us),
            SessionEvent::TenantBudget {
                room,
                request,
                verdict,
                ..
            } => Self::tenant_budget(before, live.clone(), room, *request, *verdict),
            SessionEvent::HistoryRead {
                room,
                request,
                read,
            } => Self::history_read(before, live.clone(), room, *request, read.as_ref()),
            SessionEvent::HistoryAnswer {
                room,
                request,
                available,
            } => {
                let effect = if *available {
                    SessionEffect::SendHistory {
                        room: room.clone(),
                        request: *request,
                    }
                } else {
                    error(ErrorCode::HistoryUnavailable, Some(*request))
                };
                keep(before, live.clone(), vec![effect])
            }
            SessionEvent::Drain { deadline_us } => {
                if matches!(before, SessionState::Draining { .. }) {
                    return Err(not_allowed(before, event));
                }
                let at_us = self.deadline(live, Some(*deadline_us));
                step(
                    SessionState::Draining {
                        live: Box::new(live.clone()),
                        deadline_us: *deadline_us,
                    },
                    vec![
                        SessionEffect::SendDrain,
                        SessionEffect::ScheduleTick { at_us },
                    ],
                )
            }
            SessionEvent::Join { now_us, .. }
            | SessionEvent::Leave { now_us, .. }
            | SessionEvent::Publish { now_us, .. }
            | SessionEvent::Heartbeat { now_us, .. }
            | SessionEvent::Governance { now_us, .. }
            | SessionEvent::PresenceRequest { now_us, .. }
            | SessionEvent::HistoryRequest { now_us, .. }
            | SessionEvent::Refresh { now_us, .. }
            | SessionEvent::ProtocolError { now_us, .. } => {
                let mut seen = live.clone();
                seen.last_seen_us = seen.last_seen_us.max(*now_us);
                self.client_event(before, seen, event)
            }
            SessionEvent::Upgrade { .. }
            | SessionEvent::TokenValid { .. }
            | SessionEvent::TokenInvalid { .. }
            | SessionEvent::TokenExpired => return Err(not_allowed(before, event)),
        })
    }
}

/// `<session, 16 hex digits>-<count, hex>`, exactly `format!("{session:016x}-{published:x}")`,
/// made in one allocation with the `hex` crate: one is made for every publish, and the padded
/// formatting machinery was about a fifth of the machine's step (a profile of the throughput
/// workload).
pub(super) fn twist_id(session: u64, published: u64) -> String {
    let mut digits = [b'0'; 32];
    let encoded = hex::encode_to_slice(session.to_be_bytes(), &mut digits[..16])
        .and_then(|()| hex::encode_to_slice(published.to_be_bytes(), &mut digits[16..]));
    // The count without its leading zeros, one digit at least.
    let count_from = 16 + digits[16..31].iter().take_while(|&&d| d == b'0').count();
    match (
        encoded,
        std::str::from_utf8(&digits[..16]),
        std::str::from_utf8(&digits[count_from..]),
    ) {
        (Ok(()), Ok(session), Ok(count)) => {
            let mut id = String::with_capacity(session.len() + 1 + count.len());
            id.push_str(session);
            id.push('-');
            id.push_str(count);
            id
        }
        // Not reached: 8 bytes always encode into 16 ASCII digits.
        _ => format!("{session:016x}-{published:x}"),
    }
}

pub(super) fn not_allowed(state: &SessionState, event: &SessionEvent) -> SessionRejection {
    SessionRejection::NotAllowed {
        state: SessionMachine::state_kind(state),
        event: SessionMachine::event_kind(event),
    }
}
