//! The governance service of a Brain node: one [`TenantDriver`] task per served tenant, and the
//! in-process API the admin endpoints behind `arq gov …` call (submit a command, read the state).
//!
//! With a lease store (several nodes on NATS), a tenant is served through its lease: a
//! [`crate::lease`] task per tenant, and the driver runs only while this node is the tenant's
//! writer. Without one (a single node), the driver runs as soon as the tenant is served. A call
//! on a node that is not the writer is forwarded to the writer over the spine ([`crate::forward`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arqon_core::governance::checkpoint::Resumed;
use arqon_core::governance::{ControlPlane, Principal, Rules};
use arqon_core::lease::{Lease, LeaseState};
use arqon_proto::GovernanceCommand;
use arqon_proto::names::TenantId;
use arqon_spine::Spine;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::audit_log::{AuditLogError, AuditStore};
use crate::forward::{self, Asker, ForwardError, Request};
use crate::governance::{Applied, DriverCommand, GovernanceDriverError, Now, TenantDriver};
use crate::lease::{self, LeaseStore, LeaseTask, Writing};

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
    /// Another node is the tenant's governance writer (or none is, for a moment).
    #[error("tenant {tenant}: this node is not its governance writer{}", writer.as_ref().map(|w| format!("; {w} is")).unwrap_or_default())]
    NotWriter {
        /// The tenant.
        tenant: TenantId,
        /// The writer's node id, when one holds the lease.
        writer: Option<String>,
    },
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
    /// Answers requests other nodes forward (with a lease only).
    forwarded: Option<JoinHandle<()>>,
}

impl Served {
    fn abort(&self) {
        self.task.abort();
        if let Some(forwarded) = &self.forwarded {
            forwarded.abort();
        }
    }
}

/// How this node takes part in the writer leases.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The store.
    pub store: Arc<dyn LeaseStore>,
    /// This node's id, written as the holder.
    pub node_id: String,
    /// The lease machine (its timings).
    pub lease: Lease,
}

/// What starts a tenant's driver: shared by the service and its lease tasks.
struct Starter {
    spine: Arc<dyn Spine>,
    store: AuditStore,
    rules: Rules,
    tick: Duration,
    now: Now,
    /// Whether a writer answers forwarded requests (several nodes, with a lease).
    answers_forwarded: bool,
    served: Mutex<HashMap<TenantId, Served>>,
}

/// The governance control planes of the tenants this node serves.
pub struct GovernanceService {
    starter: Arc<Starter>,
    lease: Option<LeaseSettings>,
    asker: Option<Asker>,
    leases: Arc<Mutex<HashMap<TenantId, LeaseTask>>>,
}

impl std::fmt::Debug for GovernanceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GovernanceService")
            .field("store", &self.starter.store)
            .field("tick", &self.starter.tick)
            .field("lease", &self.lease)
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
            starter: Arc::new(Starter {
                spine,
                store,
                rules,
                tick,
                now,
                answers_forwarded: false,
                served: Mutex::new(HashMap::new()),
            }),
            lease: None,
            asker: None,
            leases: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same service, serving each tenant only while it holds the tenant's writer lease, and
    /// forwarding calls to the writer while it does not.
    ///
    /// # Panics
    /// Never: it runs before any tenant is served, so the starter is not shared yet.
    #[must_use]
    pub fn with_lease(mut self, settings: LeaseSettings) -> Self {
        self.asker = Some(Asker::new(
            Arc::clone(&self.starter.spine),
            settings.node_id.clone(),
        ));
        if let Some(starter) = Arc::get_mut(&mut self.starter) {
            starter.answers_forwarded = true;
        }
        self.lease = Some(settings);
        self
    }

    /// Starts serving `tenant` (idempotent). Without a lease store: opens and verifies its audit
    /// chain, subscribes to its `gov.up` (live when this returns) and spawns its driver. With
    /// one: starts the tenant's lease task and returns once it has its first answer; the driver
    /// runs while this node is the writer.
    pub async fn serve(&self, tenant: &TenantId) -> Result<(), GovernanceServiceError> {
        let Some(settings) = &self.lease else {
            return self.starter.start(tenant).await;
        };
        let mut leases = self.leases.lock().await;
        if leases.get(tenant).is_some_and(LeaseTask::is_running) {
            return Ok(());
        }
        let (writing_tx, mut writing) = mpsc::channel(4);
        let task = lease::spawn(
            settings.lease,
            Arc::clone(&settings.store),
            tenant.clone(),
            settings.node_id.clone(),
            lease::monotonic_now(),
            writing_tx,
        );
        let mut state = task.state.clone();
        leases.insert(tenant.clone(), task);
        drop(leases);
        // Applies the lease's decisions: start the driver as the writer, stop it at once when not.
        let starter = Arc::clone(&self.starter);
        // Weak: the service's drop must still end every lease task.
        let all_leases = Arc::downgrade(&self.leases);
        let owned = tenant.clone();
        let (first_tx, first) = oneshot::channel();
        tokio::spawn(async move {
            let mut first_tx = Some(first_tx);
            while let Some(decision) = writing.recv().await {
                match decision {
                    Writing::Start => {
                        if let Err(error) = starter.start(&owned).await {
                            // Give the lease up: it expires and another node takes over.
                            tracing::error!(tenant = %owned, %error, "governance writer could not start; leaving the lease");
                            if let Some(leases) = all_leases.upgrade() {
                                leases.lock().await.remove(&owned);
                            }
                        }
                        if let Some(tx) = first_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Writing::Stop => starter.stop(&owned).await,
                }
            }
        });
        // The first answer: this node became the writer (and its driver runs), or it follows.
        let decided = async {
            loop {
                if matches!(*state.borrow_and_update(), LeaseState::Follower { retry_at_us } if retry_at_us > 0)
                {
                    return;
                }
                if state.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::select! {
            _ = first => {}
            () = decided => {}
        }
        Ok(())
    }

    /// The lease state of `tenant` on this node, as it changes, when it takes part in a lease.
    pub async fn watch_lease(&self, tenant: &TenantId) -> Option<watch::Receiver<LeaseState>> {
        let leases = self.leases.lock().await;
        leases.get(tenant).map(|task| task.state.clone())
    }

    /// Whether this node writes `tenant`'s chain now.
    pub async fn is_writer(&self, tenant: &TenantId) -> bool {
        self.starter
            .served
            .lock()
            .await
            .get(tenant)
            .is_some_and(|s| !s.task.is_finished())
    }
}

impl Starter {
    /// Starts `tenant`'s driver (idempotent).
    async fn start(&self, tenant: &TenantId) -> Result<(), GovernanceServiceError> {
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
        let (driver, resumed) = TenantDriver::resume(
            tenant.clone(),
            self.rules.clone(),
            audit,
            Arc::clone(&self.spine),
        )
        .await
        .map_err(|source| GovernanceServiceError::Driver {
            tenant: tenant.clone(),
            source,
        })?;
        log_resumed(tenant, &resumed);
        let subscription =
            driver
                .subscribe()
                .await
                .map_err(|source| GovernanceServiceError::Driver {
                    tenant: tenant.clone(),
                    source,
                })?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let forwarded = if self.answers_forwarded {
            let listener =
                forward::serve(Arc::clone(&self.spine), tenant.clone(), commands.clone())
                    .await
                    .map_err(|source| GovernanceServiceError::Driver {
                        tenant: tenant.clone(),
                        source: source.into(),
                    })?;
            Some(listener)
        } else {
            None
        };
        let task =
            tokio::spawn(driver.run(subscription, receiver, self.tick, Arc::clone(&self.now)));
        served.insert(
            tenant.clone(),
            Served {
                commands,
                task,
                forwarded,
            },
        );
        Ok(())
    }

    /// Stops `tenant`'s driver at once (the lease is lost); nothing more is written.
    async fn stop(&self, tenant: &TenantId) {
        if let Some(served) = self.served.lock().await.remove(tenant) {
            served.abort();
            tracing::warn!(tenant = %tenant, "governance writer stopped: lease lost");
        }
    }
}

impl GovernanceService {
    /// Hands a command from a principal of this node to `tenant`'s driver and waits for its
    /// outcome; on a node that is not the writer, the writer decides it (forwarded).
    pub async fn submit(
        &self,
        tenant: &TenantId,
        from: Principal,
        message: GovernanceCommand,
    ) -> Result<Applied, GovernanceServiceError> {
        let Some(commands) = self.local(tenant).await? else {
            let answer = self
                .forward(tenant, Request::Submit { from, message })
                .await?;
            return answer
                .into_applied()
                .map_err(|reason| stopped(tenant, reason));
        };
        let (reply, outcome) = oneshot::channel();
        let command = DriverCommand::Submit {
            from,
            message,
            reply,
        };
        send(tenant, &commands, command).await?;
        match outcome.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(reason)) => Err(stopped(tenant, reason)),
            Err(_) => Err(stopped(tenant, "no answer".into())),
        }
    }

    /// A copy of `tenant`'s control plane (pending proposals, rollouts, paused, catalog), read
    /// from the writer wherever it runs.
    pub async fn snapshot(
        &self,
        tenant: &TenantId,
    ) -> Result<ControlPlane, GovernanceServiceError> {
        let Some(commands) = self.local(tenant).await? else {
            let answer = self.forward(tenant, Request::Snapshot).await?;
            let checkpoint = answer
                .into_snapshot()
                .map_err(|reason| stopped(tenant, reason))?;
            return ControlPlane::restore(tenant.clone(), self.starter.rules.clone(), &checkpoint)
                .map_err(|e| stopped(tenant, e.to_string()));
        };
        let (reply, copy) = oneshot::channel();
        send(tenant, &commands, DriverCommand::Snapshot { reply }).await?;
        copy.await.map_err(|_| stopped(tenant, "no answer".into()))
    }

    /// The local driver's queue; `None` when another node writes (with a lease).
    async fn local(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<mpsc::Sender<DriverCommand>>, GovernanceServiceError> {
        let commands = self
            .starter
            .served
            .lock()
            .await
            .get(tenant)
            .map(|s| s.commands.clone());
        match (commands, &self.lease) {
            (Some(commands), _) => Ok(Some(commands)),
            (None, Some(_)) => Ok(None),
            (None, None) => Err(GovernanceServiceError::NotServed(tenant.clone())),
        }
    }

    /// Asks the writer; no answer in time is [`GovernanceServiceError::NotWriter`] naming the
    /// lease's holder (none, for a moment, during a failover).
    async fn forward(
        &self,
        tenant: &TenantId,
        request: Request,
    ) -> Result<forward::Answer, GovernanceServiceError> {
        let (Some(asker), Some(settings)) = (&self.asker, &self.lease) else {
            return Err(GovernanceServiceError::NotServed(tenant.clone()));
        };
        match asker.ask(tenant, request).await {
            Ok(answer) => Ok(answer),
            Err(ForwardError::NoAnswer(_)) => Err(GovernanceServiceError::NotWriter {
                tenant: tenant.clone(),
                writer: settings.store.holder(tenant).await,
            }),
            Err(error) => Err(stopped(tenant, error.to_string())),
        }
    }
}

async fn send(
    tenant: &TenantId,
    commands: &mpsc::Sender<DriverCommand>,
    command: DriverCommand,
) -> Result<(), GovernanceServiceError> {
    commands
        .send(command)
        .await
        .map_err(|_| stopped(tenant, "not running".into()))
}

/// Says how a writer's control plane started: from a checkpoint (how far behind its chain), fresh,
/// or paused because its checkpoint was refused.
fn log_resumed(tenant: &TenantId, resumed: &Resumed) {
    match resumed {
        Resumed::Fresh => {
            tracing::info!(tenant = %tenant, "governance writer starts with a fresh control plane");
        }
        Resumed::Checkpoint { seq, behind: 0 } => {
            tracing::info!(tenant = %tenant, seq, "governance writer resumed from its checkpoint");
        }
        Resumed::Checkpoint { seq, behind } => tracing::warn!(
            tenant = %tenant,
            seq,
            behind,
            "governance writer resumed from a checkpoint older than the chain's head"
        ),
        Resumed::Refused(error) => tracing::error!(
            tenant = %tenant,
            %error,
            "governance checkpoint refused; the control plane starts paused"
        ),
    }
}

fn stopped(tenant: &TenantId, reason: String) -> GovernanceServiceError {
    GovernanceServiceError::Stopped {
        tenant: tenant.clone(),
        reason,
    }
}

impl Drop for Starter {
    fn drop(&mut self) {
        for served in self.served.get_mut().values() {
            served.abort();
        }
    }
}
