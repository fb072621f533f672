//! The file audit log: appends survive a reopen as one verified chain; an edit on disk is named.

use std::collections::BTreeMap;

use arqon_brain::audit_log::{AuditLogError, AuditStore, FileAuditLog};
use arqon_core::audit::{AuditEntry, AuditFault, verify};
use arqon_proto::names::TenantId;

pub(crate) fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        at_us: 1_700_000_000_000_000 + n,
        tenant: "acme".into(),
        kind: "proposal".into(),
        actor: "agent-1".into(),
        role: "dataplane".into(),
        subject: format!("prop_{n:03}"),
        outcome: "pending".into(),
        detail: BTreeMap::from([("confidence".into(), "0.92".into())]),
    }
}

// AC-GOV-13
#[tokio::test]
async fn file_log_round_trips_across_reopen_and_names_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::parse("acme").unwrap();

    let mut log = FileAuditLog::open(dir.path(), &tenant).await.unwrap();
    for n in 1..=3 {
        assert_eq!(log.append(entry(n), None).await.unwrap().seq, n);
    }
    drop(log);
    let mut log = FileAuditLog::open(dir.path(), &tenant).await.unwrap();
    let fourth = log.append(entry(4), None).await.unwrap();
    assert_eq!(fourth.seq, 4);
    log.append(entry(5), None).await.unwrap();

    let records = log.records().await.unwrap();
    assert_eq!(records.len(), 5);
    assert!(verify(&records).is_ok());
    assert_eq!(records[3], fourth);
    assert_eq!(records[3].prev_hash, records[2].hash);
    let store = AuditStore::Dir(dir.path().to_path_buf());
    assert_eq!(store.verify(&tenant).await.unwrap(), records);
    let path = log.path().to_path_buf();
    assert_eq!(path, FileAuditLog::path_for(dir.path(), &tenant));
    drop(log);

    // Edit record 3 on disk.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    let edited = lines[2].replace(r#""outcome":"pending""#, r#""outcome":"approved""#);
    assert_ne!(edited, lines[2]);
    let mut tampered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    tampered[2] = edited;
    std::fs::write(&path, tampered.join("\n") + "\n").unwrap();

    let records = FileAuditLog::read_path(&path).await.unwrap();
    let err = verify(&records).unwrap_err();
    assert_eq!(
        (err.first_bad_seq, err.reason),
        (3, AuditFault::HashMismatch)
    );
    // A broken chain is not appended to.
    match FileAuditLog::open_path(path).await {
        Err(AuditLogError::Chain(e)) => assert_eq!(e.first_bad_seq, 3),
        other => panic!("expected a chain error, got {other:?}"),
    }
}

#[tokio::test]
async fn file_log_names_a_removed_line() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::parse("beta-2").unwrap();
    let mut log = FileAuditLog::open(dir.path(), &tenant).await.unwrap();
    for n in 1..=4 {
        log.append(entry(n), None).await.unwrap();
    }
    let path = log.path().to_path_buf();
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let err = verify(&FileAuditLog::read_path(&path).await.unwrap()).unwrap_err();
    assert_eq!(
        (err.first_bad_seq, err.reason),
        (2, AuditFault::Missing { found: 3 })
    );
}
