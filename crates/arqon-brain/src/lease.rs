//! The governance lease's shell: runs one [`arqon_core::lease::Lease`] machine per tenant against
//! a lease store (a `JetStream` KV bucket whose keys expire) and tells the governance service when
//! this node starts and stops being the tenant's writer.
//!
//! Every decision is the machine's; this file only sends the store requests it asks for (one at a
//! time, so an answer always belongs to the request in flight), turns the answers into events and
//! sleeps until the ticks it schedules.

use std::sync::Arc;
use std::time::Duration;

use arqon_core::lease::{Lease, LeaseEffect, LeaseEvent, LeaseState};
use arqon_core::machine::Machine;
use arqon_proto::names::TenantId;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::governance::Now;

/// The KV bucket holding one lease key per tenant; its `max_age` is the lease's ttl.
pub const BUCKET: &str = "ARQON_GOV_LEASE";

/// What the store answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The create or update was taken; the key is at this revision.
    Granted(u64),
    /// The key is another node's.
    Taken,
}

/// Why a lease-store request failed (the machine sees `Unreachable`).
#[derive(Debug, thiserror::Error)]
#[error("lease store: {0}")]
pub struct LeaseStoreError(String);

/// A compare-and-set store whose keys expire `ttl` after their last write.
pub trait LeaseStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `tenant`'s key with `holder` as its value, only if it is absent.
    fn acquire<'a>(
        &'a self,
        tenant: &'a TenantId,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<Answer, LeaseStoreError>>;
    /// Writes `holder` again, only if the key is still at `revision`.
    fn renew<'a>(
        &'a self,
        tenant: &'a TenantId,
        holder: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Answer, LeaseStoreError>>;
    /// The node that holds `tenant`'s key now, if any.
    fn holder<'a>(&'a self, tenant: &'a TenantId) -> BoxFuture<'a, Option<String>>;
}

/// The lease store on `JetStream` KV: bucket [`BUCKET`], history 1, `max_age` = the lease's ttl,
/// replicated on up to three servers of the cluster.
#[derive(Clone, Debug)]
pub struct KvLeaseStore {
    store: kv::Store,
}

impl KvLeaseStore {
    /// Opens (or creates) the bucket with keys that expire after `ttl`.
    pub async fn open(client: async_nats::Client, ttl: Duration) -> Result<Self, LeaseStoreError> {
        let replicas = arqon_spine::auto_replicas(&client);
        let js = jetstream::new(client);
        // The bucket's stream is made here, as `create_key_value` would make it: that call first
        // queries account limits in a form nats-server 2.9 does not answer.
        js.get_or_create_stream(jetstream::stream::Config {
            name: format!("KV_{BUCKET}"),
            description: Some("ArqonBus governance writer leases, one key per tenant".to_owned()),
            subjects: vec![format!("$KV.{BUCKET}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            storage: jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: replicas,
            discard: jetstream::stream::DiscardPolicy::New,
            ..jetstream::stream::Config::default()
        })
        .await
        .map_err(|e| LeaseStoreError(e.to_string()))?;
        let store = js
            .get_key_value(BUCKET)
            .await
            .map_err(|e| LeaseStoreError(e.to_string()))?;
        Ok(Self { store })
    }
}

impl LeaseStore for KvLeaseStore {
    fn acquire<'a>(
        &'a self,
        tenant: &'a TenantId,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<Answer, LeaseStoreError>> {
        Box::pin(async move {
            match self
                .store
                .create(tenant.as_str(), Bytes::copy_from_slice(holder.as_bytes()))
                .await
            {
                Ok(revision) => Ok(Answer::Granted(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(Answer::Taken),
                Err(e) => Err(LeaseStoreError(e.to_string())),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        tenant: &'a TenantId,
        holder: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Answer, LeaseStoreError>> {
        Box::pin(async move {
            match self
                .store
                .update(
                    tenant.as_str(),
                    Bytes::copy_from_slice(holder.as_bytes()),
                    revision,
                )
                .await
            {
                Ok(revision) => Ok(Answer::Granted(revision)),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(Answer::Taken),
                Err(e) => Err(LeaseStoreError(e.to_string())),
            }
        })
    }

    fn holder<'a>(&'a self, tenant: &'a TenantId) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let value = self.store.get(tenant.as_str()).await.ok().flatten()?;
            Some(String::from_utf8_lossy(&value).into_owned())
        })
    }
}

/// What the lease task tells the governance service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writing {
    /// This node is the tenant's writer: start the driver.
    Start,
    /// This node is no longer the writer: stop the driver now.
    Stop,
}

/// A running lease task of one tenant.
#[derive(Debug)]
pub struct LeaseTask {
    /// The machine's state after each step (for `/readyz`, the admin API and tests).
    pub state: watch::Receiver<LeaseState>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseTask {
    /// Whether the task still runs.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for LeaseTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `tenant`'s lease for `holder` (this node's id) until dropped; [`Writing`] decisions go
/// to `writing`.
pub fn spawn(
    lease: Lease,
    store: Arc<dyn LeaseStore>,
    tenant: TenantId,
    holder: String,
    now: Now,
    writing: mpsc::Sender<Writing>,
) -> LeaseTask {
    let (state_tx, state) = watch::channel(LeaseState::initial());
    let runner = Runner {
        lease,
        store,
        tenant,
        holder,
        now,
        writing,
        state: state_tx,
    };
    LeaseTask {
        state,
        task: tokio::spawn(runner.run()),
    }
}

struct Runner {
    lease: Lease,
    store: Arc<dyn LeaseStore>,
    tenant: TenantId,
    holder: String,
    now: Now,
    writing: mpsc::Sender<Writing>,
    state: watch::Sender<LeaseState>,
}

impl Runner {
    async fn run(self) {
        let mut tick_at = Some((self.now)());
        loop {
            if let Some(at_us) = tick_at.take() {
                sleep_until(&self.now, at_us).await;
            }
            let mut event = LeaseEvent::Tick {
                now_us: (self.now)(),
            };
            // Step until no request is in flight; each answer is the next event.
            loop {
                let current = self.state.borrow().clone();
                let step = match self.lease.step(&current, &event) {
                    Ok(step) => step,
                    Err(rejection) => {
                        tracing::debug!(tenant = %self.tenant, %rejection, "lease event refused");
                        break;
                    }
                };
                let before = Lease::state_kind(&current);
                let after = Lease::state_kind(&step.state);
                if before != after {
                    tracing::info!(tenant = %self.tenant, from = before, to = after, "governance lease");
                }
                self.state.send_replace(step.state);
                let mut next = None;
                for effect in step.effects {
                    match effect {
                        LeaseEffect::Acquire => {
                            next = Some(
                                self.answer(self.store.acquire(&self.tenant, &self.holder), None)
                                    .await,
                            );
                        }
                        LeaseEffect::Renew {
                            revision,
                            answer_by_us,
                        } => {
                            let renew = self.store.renew(&self.tenant, &self.holder, revision);
                            next = Some(self.answer(renew, Some(answer_by_us)).await);
                        }
                        LeaseEffect::StartWriting => self.tell(Writing::Start).await,
                        LeaseEffect::StopWriting => self.tell(Writing::Stop).await,
                        LeaseEffect::ScheduleTick { at_us } => tick_at = Some(at_us),
                    }
                }
                match next {
                    Some(answer) => event = answer,
                    None => break,
                }
            }
            if self.writing.is_closed() {
                return;
            }
        }
    }

    /// Waits for a store answer, by `answer_by_us` at the latest (else by a retry interval).
    async fn answer(
        &self,
        request: BoxFuture<'_, Result<Answer, LeaseStoreError>>,
        answer_by_us: Option<u64>,
    ) -> LeaseEvent {
        let now_us = (self.now)();
        let wait_us = answer_by_us.map_or(self.lease.config.retry_every_us, |by| {
            by.saturating_sub(now_us)
        });
        let answer = tokio::time::timeout(Duration::from_micros(wait_us), request).await;
        let now_us = (self.now)();
        match answer {
            Ok(Ok(Answer::Granted(revision))) => LeaseEvent::Granted { revision, now_us },
            Ok(Ok(Answer::Taken)) => LeaseEvent::Taken { now_us },
            Ok(Err(error)) => {
                tracing::warn!(tenant = %self.tenant, %error, "governance lease request failed");
                LeaseEvent::Unreachable { now_us }
            }
            Err(_) => {
                tracing::warn!(tenant = %self.tenant, "governance lease request timed out");
                LeaseEvent::Unreachable { now_us }
            }
        }
    }

    async fn tell(&self, writing: Writing) {
        if self.writing.send(writing).await.is_err() {
            tracing::debug!(tenant = %self.tenant, "governance service gone");
        }
    }
}

/// A monotonic clock in µs (since the first call): lease durations are measured on it, so a wall
/// clock that jumps cannot stretch a belief.
pub fn monotonic_now() -> Now {
    let start = std::time::Instant::now();
    Arc::new(move || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

async fn sleep_until(now: &Now, at_us: u64) {
    let wait = at_us.saturating_sub(now());
    if wait > 0 {
        tokio::time::sleep(Duration::from_micros(wait)).await;
    }
}
