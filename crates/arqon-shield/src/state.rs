//! State shared by a node's routes and sessions ([`Shared`]), the settings its drivers read, and
//! the guards that give back a connection slot or count when a session ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arqon_auth::Verifier;
use arqon_core::limits::{Admission, TenantLimits};
use arqon_core::session::SessionMachine;
use arqon_proto::FrameLimits;
use arqon_proto::names::{TenantId, UserId};
use tokio::sync::{Notify, watch};

use crate::governance::Governance;
use crate::hooks::Hooks;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::presence::NodePresence;

/// Settings the drivers read, derived once from the configuration.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) node_id: String,
    pub(crate) frame_limits: FrameLimits,
    pub(crate) outbound_queue: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) reconnect_after: Duration,
    pub(crate) leeway_us: u64,
    /// Most messages one recovering join returns (`history.recovery_limit`).
    pub(crate) recovery_limit: usize,
    /// Most bytes of one `HistoryPage` (`history.page_bytes`).
    pub(crate) page_bytes: usize,
}

/// State shared by the routes and every session of a node.
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) machine: SessionMachine,
    pub(crate) verifier: Verifier,
    pub(crate) admission: Mutex<Admission>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) hooks: Hooks,
    /// Presence: the Brain's driver, delivering to this node's hub.
    pub(crate) presence: NodePresence,
    pub(crate) drain: watch::Sender<Option<u64>>,
    /// The governance control plane and its `gov.down` fan-out.
    pub(crate) governance: Arc<Governance>,
    /// True from the start of a drain: `/readyz` fails and upgrades are refused.
    pub(crate) draining: AtomicBool,
    /// Open sessions (upgrades in progress included).
    pub(crate) sessions: AtomicU64,
    /// Notified when the last session is gone.
    pub(crate) sessions_gone: Notify,
    pub(crate) next_session: AtomicU64,
}

impl Shared {
    /// A token's `exp` (seconds) as the session's expiry in µs, leeway included.
    pub(crate) fn expiry_us(&self, exp_secs: u64) -> u64 {
        exp_secs
            .saturating_mul(1_000_000)
            .saturating_add(self.settings.leeway_us)
    }

    pub(crate) fn limits_for(&self, tenant: &TenantId) -> TenantLimits {
        self.admission
            .lock()
            .map_or_else(|_| TenantLimits::default(), |a| a.limits_for(tenant))
    }
}

/// Holds a node connection slot; released on drop.
pub(crate) struct SlotGuard(pub(crate) Arc<Shared>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Ok(mut admission) = self.0.admission.lock() {
            admission.release_connection();
        }
        if self.0.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.sessions_gone.notify_waiters();
        }
    }
}

/// Holds a tenant/user connection count; released on drop.
pub(crate) struct IdentityGuard(pub(crate) Option<(Arc<Shared>, TenantId, UserId)>);

impl Drop for IdentityGuard {
    fn drop(&mut self) {
        if let Some((shared, tenant, user)) = self.0.take()
            && let Ok(mut admission) = shared.admission.lock()
        {
            admission.release_identity(&tenant, &user);
        }
    }
}
