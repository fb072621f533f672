//! Extension points the Shield calls while executing Session effects: presence and the policy chain.
//!
//! The Brain implements [`PresenceHook`]; the Wasm policy host is adapted to [`PolicyHook`]. The
//! defaults do nothing and allow everything, so a node runs without either.

use std::sync::Arc;

use arqon_core::session::PolicyVerdict;
use arqon_proto::names::{RoomName, TenantId, UserId};
use bytes::Bytes;

use crate::policy::WasmPolicy;

/// Who joined or left a room, as presence sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceMember {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
    /// The session id, as sent in `Welcome`.
    pub session: String,
    /// This node's id.
    pub node: String,
    /// When, in µs since the epoch.
    pub at_us: u64,
    /// The join's presence metadata as JSON text (`None` when empty, and on leave).
    pub meta: Option<String>,
}

/// Receives the Session machine's `presence_join` / `presence_leave` effects.
pub trait PresenceHook: Send + Sync + 'static {
    /// `member` joined `room`.
    fn join(&self, member: &PresenceMember, room: &RoomName);
    /// `member` left `room` (leave, close, expiry or drain).
    fn leave(&self, member: &PresenceMember, room: &RoomName);
}

/// Decides on one publish (the Session machine's `run_policy` effect). Must fail closed.
pub trait PolicyHook: Send + Sync + 'static {
    /// The verdict for `payload` published by `tenant`/`user` to `room`.
    fn check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        room: &RoomName,
        payload: &Bytes,
    ) -> PolicyVerdict;

    /// The Wasm policy chains behind this hook, when they take deploys (the admin API).
    fn wasm(&self) -> Option<&WasmPolicy> {
        None
    }
}

/// The Wasm chains decide, and take deploys.
impl PolicyHook for WasmPolicy {
    fn check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        room: &RoomName,
        payload: &Bytes,
    ) -> PolicyVerdict {
        WasmPolicy::check(self, tenant, user, room, payload)
    }

    fn wasm(&self) -> Option<&WasmPolicy> {
        Some(self)
    }
}

/// No presence: effects are accepted and dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPresence;

impl PresenceHook for NoPresence {
    fn join(&self, _: &PresenceMember, _: &RoomName) {}
    fn leave(&self, _: &PresenceMember, _: &RoomName) {}
}

/// No policy chain: every publish is allowed.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl PolicyHook for AllowAll {
    fn check(&self, _: &TenantId, _: &UserId, _: &RoomName, _: &Bytes) -> PolicyVerdict {
        PolicyVerdict::Allow
    }
}

/// The hooks a node runs with.
#[derive(Clone)]
pub struct Hooks {
    /// Presence.
    pub presence: Arc<dyn PresenceHook>,
    /// The policy chain.
    pub policy: Arc<dyn PolicyHook>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            presence: Arc::new(NoPresence),
            policy: Arc::new(AllowAll),
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}
