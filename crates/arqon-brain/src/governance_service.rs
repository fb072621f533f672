//! The governance service of a Brain node: one [`TenantDriver`] task per served tenant, and the
//! in-process API the admin endpoints behind `arq gov …` call (submit a command, read the state).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arqon_core::governance::{ControlPlane, Principal, Rules};
use arqon_proto::GovernanceCommand;
use arqon_proto::names::TenantId;
use arqon_spine::Spine;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit_log::{AuditLogError, AuditStore};
use crate::governance::{Applied, DriverCommand, GovernanceDriverError, Now, TenantDriver};

/// How many local commands may queue for one tenant's driver.
const COMMAND_QUEUE: usize = 64;

/// Why a governance service call failed.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceServiceError {
    /// The tenant's audit chain could not be opened (or does not verify).
    #[error("tenant {tenant}: {source}")]
    Audit {
        /// The tenant.
        tenant: TenantId,
        /// The cause.
        source: AuditLogError,
    },
    /// The tenant's driver could not start.
    #[error("tenant {tenant}: {source}")]
    Driver {
        /// The tenant.
        tenant: TenantId,
        /// The cause.
        source: GovernanceDriverError,
    },
    /// This node does not serve the tenant.
    #[error("tenant {0} is not served here")]
    NotServed(TenantId),
    /// The tenant's driver has stopped (an audit append or a publish failed).
    #[error("tenant {tenant}: driver stopped: {reason}")]
    Stopped {
        /// The tenant.
        tenant: TenantId,
        /// Why, when known.
        reason: String,
    },
}

struct Served {
    commands: mpsc::Sender<DriverCommand>,
    task: JoinHandle<Result<TenantDriver, GovernanceDriverError>>,
}

/// The governance control planes of the tenants this node serves.
pub struct GovernanceService {
    spine: Arc<dyn Spine>,
    store: AuditStore,
    rules: Rules,
    tick: Duration,
    now: Now,
    served: Mutex<HashMap<TenantId, Served>>,
}

impl std::fmt::Debug for GovernanceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceService")
            .field("store", &self.store)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl GovernanceService {
    /// A service deciding with `rules`, auditing into `store`, ticking every `tick` on `now`.
    pub fn new(
        spine: Arc<dyn Spine>,
        store: AuditStore,
        rules: Rules,
        tick: Duration,
        now: Now,
    ) -> Self {
        Self {
            spine,
            store,
            rules,
            tick,
            now,
            served: Mutex::new(HashMap::new()),
        }
    }

    /// Starts serving `tenant` (idempotent): opens and verifies its audit chain, subscribes to
    /// its `gov.up` (live when this returns) and spawns its driver.
    pub async fn serve(&self, tenant: &TenantId) -> Result<(), GovernanceServiceError> {
        let mut served = self.served.lock().await;
        if served.get(tenant).is_some_and(|s| !s.task.is_finished()) {
            return Ok(());
        }
        let audit =
            self.store
                .open(tenant)
                .await
                .map_err(|source| GovernanceServiceError::Audit {
                    tenant: tenant.clone(),
                    source,
                })?;
        let driver = TenantDriver::new(
            tenant.clone(),
            self.rules.clone(),
            audit,
            Arc::clone(&self.spine),
        );
        let subscription =
            driver
                .subscribe()
                .await
                .map_err(|source| GovernanceServiceError::Driver {
                    tenant: tenant.clone(),
                    source,
                })?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let task =
            tokio::spawn(driver.run(subscription, receiver, self.tick, Arc::clone(&self.now)));
        served.insert(tenant.clone(), Served { commands, task });
        Ok(())
    }

    /// Hands a command from a local principal to `tenant`'s driver and waits for its outcome.
    pub async fn submit(
        &self,
        tenant: &TenantId,
        from: Principal,
        message: GovernanceCommand,
    ) -> Result<Applied, GovernanceServiceError> {
        let (reply, outcome) = oneshot::channel();
        self.send(
            tenant,
            DriverCommand::Submit {
                from,
                message,
                reply,
            },
        )
        .await?;
        match outcome.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(reason)) => Err(stopped(tenant, reason)),
            Err(_) => Err(stopped(tenant, "no answer".into())),
        }
    }

    /// A copy of `tenant`'s control plane (pending proposals, rollouts, paused, catalog).
    pub async fn snapshot(
        &self,
        tenant: &TenantId,
    ) -> Result<ControlPlane, GovernanceServiceError> {
        let (reply, copy) = oneshot::channel();
        self.send(tenant, DriverCommand::Snapshot { reply }).await?;
        copy.await.map_err(|_| stopped(tenant, "no answer".into()))
    }

    async fn send(
        &self,
        tenant: &TenantId,
        command: DriverCommand,
    ) -> Result<(), GovernanceServiceError> {
        let commands = self
            .served
            .lock()
            .await
            .get(tenant)
            .map(|s| s.commands.clone())
            .ok_or_else(|| GovernanceServiceError::NotServed(tenant.clone()))?;
        commands
            .send(command)
            .await
            .map_err(|_| stopped(tenant, "not running".into()))
    }
}

fn stopped(tenant: &TenantId, reason: String) -> GovernanceServiceError {
    GovernanceServiceError::Stopped {
        tenant: tenant.clone(),
        reason,
    }
}

impl Drop for GovernanceService {
    fn drop(&mut self) {
        for served in self.served.get_mut().values() {
            served.task.abort();
        }
    }
}
