//! The `JetStream` audit log against a real `nats-server` with `JetStream`, on free ports.

use std::time::Duration;

use arqon_brain::audit_log::{AuditLog, AuditLogError, JetStreamAuditLog};
use arqon_core::audit::verify;
use arqon_proto::names::TenantId;
use arqon_testkit::NatsServer;

use crate::audit_file::entry;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &NatsServer) -> Result<async_nats::Client, String> {
    match tokio::time::timeout(WAIT, async_nats::connect(server.url())).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection to {} within {WAIT:?}", server.url())),
    }
}

// AC-GOV-14
#[tokio::test]
async fn jetstream_log_round_trips_and_refuses_a_stale_writer() {
    let server = NatsServer::start_jetstream().await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();

    let mut first = JetStreamAuditLog::open(connect(&server).await.unwrap(), &tenant)
        .await
        .unwrap();
    assert_eq!(first.name(), "ARQON_AUDIT_acme");
    let mut appended = Vec::new();
    for n in 1..=3 {
        appended.push(first.append(entry(n), None).await.unwrap());
    }
    let stored = first.verify_stored().await.unwrap();
    assert_eq!(stored, appended);

    // A second writer resumes after the newest record.
    let mut second = JetStreamAuditLog::open(connect(&server).await.unwrap(), &tenant)
        .await
        .unwrap();
    let fourth = second.append(entry(4), None).await.unwrap();
    assert_eq!(fourth.seq, 4);
    assert_eq!(fourth.prev_hash, appended[2].hash);

    // The first writer's head is stale now: refused, and the chain does not fork.
    match first.append(entry(5), None).await {
        Err(AuditLogError::Conflict { expected, .. }) => assert_eq!(expected, 3),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(second.verify_stored().await.unwrap().len(), 4);
    let log = AuditLog::JetStream(Box::new(second));
    let records = log.records().await.unwrap();
    assert_eq!(records.len(), 4);
    assert!(verify(&records).is_ok());

    // Tenants do not share a chain.
    let other = TenantId::parse("other").unwrap();
    let mut log = JetStreamAuditLog::open(connect(&server).await.unwrap(), &other)
        .await
        .unwrap();
    assert_eq!(log.append(entry(1), None).await.unwrap().seq, 1);
}
