//! Audit log writers (shells over `arqon_core::audit`): a local file with fsync, and a `JetStream` stream.
//!
//! Both keep one hash chain per tenant. Hashing, chaining and verification are pure and live in
//! `arqon_core::audit`; these types only store, load and serialise appends (`&mut self`).
//! - [`FileAuditLog`]: `<dir>/<tenant>.audit.jsonl`, one JSON line per record; every append is
//!   written and `fsync`ed (`sync_data`) before it returns. The embedded default.
//! - [`JetStreamAuditLog`]: one stream per tenant (`ARQON_AUDIT_<tenant>`) holding exactly the
//!   subject `arqon.v1.<tenant>.gov.audit`; every append carries
//!   `Nats-Expected-Last-Subject-Sequence`, so a writer holding a stale head is refused instead of
//!   forking the chain.
//!
//! Each event's last record carries the control plane's [`Checkpoint`] after that event, so a new
//! writer resumes with the state and not only the chain: on `JetStream` in the record's message
//! header [`CHECKPOINT_HEADER`] (stored with the record, in one write); in a file beside the chain,
//! `<tenant>.audit.checkpoint.json`, replaced (write, fsync, rename) after the record is fsynced.

use std::path::{Path, PathBuf};

use arqon_core::audit::{
    AuditChain, AuditEntry, AuditError, AuditFault, AuditRecord, parse_lines, verify,
};
use arqon_core::governance::checkpoint::{Checkpoint, CheckpointError};
use arqon_core::subject::Subject;
use arqon_proto::names::TenantId;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

/// The message header of a `JetStream` audit record that holds the control plane's checkpoint.
pub const CHECKPOINT_HEADER: &str = "Arqon-Checkpoint";

/// How many records back from the head a new `JetStream` writer looks for a checkpoint (the head
/// record lacks one only when a writer stopped in the middle of an event's records).
const CHECKPOINT_SCAN: u64 = 64;

/// What a store holds as the newest checkpoint: none, or one that may not parse.
pub type StoredCheckpoint = Option<Result<Checkpoint, CheckpointError>>;

/// Why an audit log could not be opened, read or appended to.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// A file operation failed.
    #[error("audit file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The stored chain does not verify; nothing is appended to a broken chain.
    #[error("audit chain: {0}")]
    Chain(#[from] AuditError),
    /// A `JetStream` request failed.
    #[error("audit stream {stream}: {detail}")]
    JetStream {
        /// The stream.
        stream: String,
        /// What failed.
        detail: String,
    },
    /// Another writer appended since this one last read the head.
    #[error("audit stream {stream}: another writer appended after seq {expected}")]
    Conflict {
        /// The stream.
        stream: String,
        /// The subject sequence this writer expected to be last.
        expected: u64,
    },
}

/// A tenant's audit chain in a local file, fsynced on every append.
#[derive(Debug)]
pub struct FileAuditLog {
    path: PathBuf,
    file: tokio::fs::File,
    chain: AuditChain,
}

impl FileAuditLog {
    /// The file of `tenant`'s chain under `dir`.
    pub fn path_for(dir: &Path, tenant: &TenantId) -> PathBuf {
        dir.join(format!("{}.audit.jsonl", tenant.as_str()))
    }

    /// Opens (or creates) `tenant`'s log under `dir`, verifying what is already there.
    pub async fn open(dir: &Path, tenant: &TenantId) -> Result<Self, AuditLogError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| AuditLogError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Self::open_path(Self::path_for(dir, tenant)).await
    }

    /// Opens (or creates) the log at `path`, verifying what is already there.
    pub async fn open_path(path: PathBuf) -> Result<Self, AuditLogError> {
        let records = match Self::read_path(&path).await {
            Ok(records) => records,
            Err(AuditLogError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        verify(&records)?;
        let chain = records
            .last()
            .map_or_else(AuditChain::new, AuditChain::resume);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|source| AuditLogError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path, file, chain })
    }

    /// Reads the records stored at `path` without verifying them (`arq gov audit`).
    pub async fn read_path(path: &Path) -> Result<Vec<AuditRecord>, AuditLogError> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| AuditLogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(parse_lines(text.lines())?)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry`: writes its line and fsyncs before returning the stored record; then
    /// replaces the checkpoint file with `checkpoint`, when given.
    pub async fn append(
        &mut self,
        entry: AuditEntry,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AuditRecord, AuditLogError> {
        let record = self.chain.prepare(entry);
        let mut line = record.to_line();
        line.push('\n');
        let io = |source| AuditLogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).await.map_err(io)?;
        self.file.sync_data().await.map_err(io)?;
        self.chain.commit(&record);
        if let Some(checkpoint) = checkpoint {
            self.write_checkpoint(checkpoint).await?;
        }
        Ok(record)
    }

    /// The checkpoint file beside the chain.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.with_extension("checkpoint.json")
    }

    async fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), AuditLogError> {
        let path = self.checkpoint_path();
        let scratch = path.with_extension("json.tmp");
        let io = |source| AuditLogError::Io {
            path: scratch.clone(),
            source,
        };
        let mut file = tokio::fs::File::create(&scratch).await.map_err(io)?;
        file.write_all(checkpoint.to_json().as_bytes())
            .await
            .map_err(io)?;
        file.sync_data().await.map_err(io)?;
        tokio::fs::rename(&scratch, &path).await.map_err(io)
    }

    /// The newest checkpoint, when there is one.
    pub async fn checkpoint(&self) -> Result<StoredCheckpoint, AuditLogError> {
        let path = self.checkpoint_path();
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => Ok(Some(Checkpoint::from_json(&text))),
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(AuditLogError::Io { path, source }),
        }
    }

    /// Every record in the file, in order.
    pub async fn records(&self) -> Result<Vec<AuditRecord>, AuditLogError> {
        Self::read_path(&self.path).await
    }
}

/// A tenant's audit chain in its own `JetStream` stream.
#[derive(Debug)]
pub struct JetStreamAuditLog {
    js: jetstream::Context,
    stream: stream::Stream,
    name: String,
    subject: Subject,
    chain: AuditChain,
    last_subject_seq: u64,
}

impl JetStreamAuditLog {
    /// The stream name of `tenant`'s chain (`ARQON_AUDIT_<tenant>`; tenant ids hold no `.`, `*`,
    /// `>` or whitespace).
    pub fn stream_name(tenant: &TenantId) -> String {
        format!("ARQON_AUDIT_{}", tenant.as_str())
    }

    /// Opens (or creates) `tenant`'s stream and resumes after its newest record. The stored chain
    /// is not re-read here; [`JetStreamAuditLog::verify_stored`] checks it.
    pub async fn open(
        client: async_nats::Client,
        tenant: &TenantId,
    ) -> Result<Self, AuditLogError> {
        let name = Self::stream_name(tenant);
        let subject = Subject::gov_audit(tenant);
        let js_client = client.clone();
        let js = jetstream::new(client);
        let fail = |detail: String| AuditLogError::JetStream {
            stream: name.clone(),
            detail,
        };
        let stream = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject.as_str().to_owned()],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::New,
                deny_delete: true,
                deny_purge: true,
                // Three copies on a cluster: losing one NATS server loses no committed record.
                num_replicas: arqon_spine::auto_replicas(&js_client),
                ..Default::default()
            })
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (chain, last_subject_seq) = match stream
            .get_last_raw_message_by_subject(subject.as_str())
            .await
        {
            Ok(message) => {
                let record = decode(&message.payload, message.sequence)?;
                (AuditChain::resume(&record), message.sequence)
            }
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                (AuditChain::new(), 0)
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        Ok(Self {
            js,
            stream,
            name,
            subject,
            chain,
            last_subject_seq,
        })
    }

    /// The stream name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends `entry`, with `checkpoint` in its header when given, once the server has
    /// acknowledged storing it; refused with [`AuditLogError::Conflict`] when another writer
    /// appended since this one's head.
    pub async fn append(
        &mut self,
        entry: AuditEntry,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AuditRecord, AuditLogError> {
        let record = self.chain.prepare(entry);
        let mut publish = PublishMessage::build()
            .payload(Bytes::from(record.to_line()))
            .expected_last_subject_sequence(self.last_subject_seq);
        if let Some(checkpoint) = checkpoint {
            publish = publish.header(CHECKPOINT_HEADER, checkpoint.to_json());
        }
        let ack = match self
            .js
            .send_publish(self.subject.to_string(), publish)
            .await
        {
            Ok(pending) => pending.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(ack) => {
                self.last_subject_seq = ack.sequence;
                self.chain.commit(&record);
                Ok(record)
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                Err(AuditLogError::Conflict {
                    stream: self.name.clone(),
                    expected: self.last_subject_seq,
                })
            }
            Err(e) => Err(AuditLogError::JetStream {
                stream: self.name.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// The newest checkpoint: in the head record's header, or at most [`CHECKPOINT_SCAN`] records
    /// before it.
    pub async fn checkpoint(&self) -> Result<StoredCheckpoint, AuditLogError> {
        let oldest = self.last_subject_seq.saturating_sub(CHECKPOINT_SCAN).max(1);
        for seq in (oldest..=self.last_subject_seq).rev() {
            match self.stream.get_raw_message(seq).await {
                Ok(message) => {
                    if let Some(value) = message.headers.get(CHECKPOINT_HEADER) {
                        return Ok(Some(Checkpoint::from_json(value.as_str())));
                    }
                }
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => {
                    return Err(AuditLogError::JetStream {
                        stream: self.name.clone(),
                        detail: e.to_string(),
                    });
                }
            }
        }
        Ok(None)
    }

    /// Every record still in the stream, in stream order (a deleted message is simply absent,
    /// which verification reports as missing), and the stream's last sequence.
    pub async fn records(&self) -> Result<(Vec<AuditRecord>, u64), AuditLogError> {
        let mut stream = self.stream.clone();
        let info = stream.info().await.map_err(|e| AuditLogError::JetStream {
            stream: self.name.clone(),
            detail: e.to_string(),
        })?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut records = Vec::new();
        if last == 0 {
            return Ok((records, 0));
        }
        for seq in first.max(1)..=last {
            match self.stream.get_raw_message(seq).await {
                Ok(message) => records.push(decode(&message.payload, seq)?),
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {}
                Err(e) => {
                    return Err(AuditLogError::JetStream {
                        stream: self.name.clone(),
                        detail: e.to_string(),
                    });
                }
            }
        }
        Ok((records, last))
    }

    /// Reads the stream and verifies the chain, including that it ends at the stream's last
    /// sequence (so a removed tail is seen too).
    pub async fn verify_stored(&self) -> Result<Vec<AuditRecord>, AuditLogError> {
        let (records, last) = self.records().await?;
        verify(&records)?;
        let end = records.last().map_or(0, |r| r.seq);
        if end != last {
            return Err(AuditError {
                first_bad_seq: end.saturating_add(1),
                reason: AuditFault::HeadMismatch,
            }
            .into());
        }
        Ok(records)
    }
}

fn decode(payload: &[u8], seq: u64) -> Result<AuditRecord, AuditLogError> {
    let text = String::from_utf8_lossy(payload);
    AuditRecord::from_line(&text).map_err(|e| {
        AuditLogError::Chain(AuditError {
            first_bad_seq: seq,
            reason: AuditFault::Malformed(e.to_string()),
        })
    })
}

/// Where a Brain keeps its audit chains: the embedded file default or `JetStream`.
#[derive(Debug)]
pub enum AuditLog {
    /// A local file with fsync.
    File(FileAuditLog),
    /// A `JetStream` stream.
    JetStream(Box<JetStreamAuditLog>),
}

impl AuditLog {
    /// Appends `entry` durably, with the control plane's `checkpoint` after it when given, and
    /// returns the stored record.
    pub async fn append(
        &mut self,
        entry: AuditEntry,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AuditRecord, AuditLogError> {
        match self {
            Self::File(log) => log.append(entry, checkpoint).await,
            Self::JetStream(log) => log.append(entry, checkpoint).await,
        }
    }

    /// The `seq` the next record gets.
    pub fn next_seq(&self) -> u64 {
        match self {
            Self::File(log) => log.chain.next_seq(),
            Self::JetStream(log) => log.chain.next_seq(),
        }
    }

    /// The newest stored checkpoint.
    pub async fn checkpoint(&self) -> Result<StoredCheckpoint, AuditLogError> {
        match self {
            Self::File(log) => log.checkpoint().await,
            Self::JetStream(log) => log.checkpoint().await,
        }
    }

    /// Every stored record, in order, unverified.
    pub async fn records(&self) -> Result<Vec<AuditRecord>, AuditLogError> {
        match self {
            Self::File(log) => log.records().await,
            Self::JetStream(log) => Ok(log.records().await?.0),
        }
    }
}

/// Where the audit chains of every tenant go: a directory (embedded) or `JetStream`.
#[derive(Clone, Debug)]
pub enum AuditStore {
    /// One fsynced file per tenant in this directory.
    Dir(PathBuf),
    /// One stream per tenant on this connection.
    JetStream(async_nats::Client),
}

impl AuditStore {
    /// Opens `tenant`'s chain.
    pub async fn open(&self, tenant: &TenantId) -> Result<AuditLog, AuditLogError> {
        Ok(match self {
            Self::Dir(dir) => AuditLog::File(FileAuditLog::open(dir, tenant).await?),
            Self::JetStream(client) => AuditLog::JetStream(Box::new(
                JetStreamAuditLog::open(client.clone(), tenant).await?,
            )),
        })
    }

    /// Reads `tenant`'s chain and verifies it (`arq gov audit --verify`): the records, or the
    /// first bad one as [`AuditLogError::Chain`]. For `JetStream` this also checks the chain ends
    /// at the stream's last sequence.
    pub async fn verify(&self, tenant: &TenantId) -> Result<Vec<AuditRecord>, AuditLogError> {
        match self {
            Self::Dir(dir) => {
                let records = FileAuditLog::read_path(&FileAuditLog::path_for(dir, tenant)).await?;
                verify(&records)?;
                Ok(records)
            }
            Self::JetStream(client) => {
                JetStreamAuditLog::open(client.clone(), tenant)
                    .await?
                    .verify_stored()
                    .await
            }
        }
    }
}
