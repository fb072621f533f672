//! The governance audit trail, pure: record hashing, chaining and verification (`specs/governance.md`).
//!
//! A record is `{"seq":N,"prev_hash":…,"record":{…},"hash":…}`. The hash is SHA-256 over a canonical
//! byte form of the typed fields (not over JSON text), so the chain does not depend on how a writer
//! formats JSON. Writers (file, `JetStream`) live in `arqon-brain`; they only store and load lines.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain-separation prefix of the record hash.
const DOMAIN: &[u8] = b"arqon.audit.v1\0";

/// What happened, as stored in the log. Holds ids, kinds and decisions; never tokens or payloads.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Event time in microseconds since the Unix epoch (an input, never read from a clock here).
    pub at_us: u64,
    /// The tenant the chain belongs to.
    pub tenant: String,
    /// What kind of record: `telemetry`, `proposal`, `approval`, `forbidden`, `enforce`, ….
    pub kind: String,
    /// Who caused it: the principal's user id, or `control-plane`.
    pub actor: String,
    /// The actor's governance role.
    pub role: String,
    /// What it is about (a proposal id, a catalog version, …); empty when nothing.
    pub subject: String,
    /// The decision or result: `received`, `approved`, `rejected`, `pending`, `refused`, `published`, ….
    pub outcome: String,
    /// Further governance fields, by name.
    pub detail: BTreeMap<String, String>,
}

/// One link of the chain, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// `hash` of the record before, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// The entry.
    pub record: AuditEntry,
    /// Lowercase hex SHA-256 of the canonical form of (`seq`, `prev_hash`, `record`).
    pub hash: String,
}

impl AuditRecord {
    /// The record as one compact JSON line, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising a struct of strings, integers and a string map cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one stored line.
    pub fn from_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// Whether `hash` matches the content.
    fn hash_is_valid(&self) -> bool {
        record_hash(self.seq, &self.prev_hash, &self.record).is_some_and(|h| h == self.hash)
    }
}

/// Computes the hash of a record; `None` when `prev_hash` is not 64 hex digits.
pub fn record_hash(seq: u64, prev_hash: &str, entry: &AuditEntry) -> Option<String> {
    let prev = decode_hash(prev_hash)?;
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(entry.at_us.to_be_bytes());
    for field in [
        &entry.tenant,
        &entry.kind,
        &entry.actor,
        &entry.role,
        &entry.subject,
        &entry.outcome,
    ] {
        put_str(&mut h, field);
    }
    put_len(&mut h, entry.detail.len());
    for (k, v) in &entry.detail {
        put_str(&mut h, k);
        put_str(&mut h, v);
    }
    Some(hex::encode(h.finalize()))
}

/// Feeds a `u32` big-endian length; lengths beyond `u32::MAX` saturate (they cannot occur in practice
/// and still hash deterministically).
pub(crate) fn put_len(h: &mut Sha256, len: usize) {
    h.update(u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// Feeds a length-prefixed UTF-8 string.
pub(crate) fn put_str(h: &mut Sha256, s: &str) {
    put_len(h, s.len());
    h.update(s.as_bytes());
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    // Only the lowercase form is canonical.
    (hex::encode(out) == text).then_some(out)
}

/// The head of a chain: what the next record links to. Appending is pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditChain {
    next_seq: u64,
    last_hash: String,
}

impl Default for AuditChain {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            last_hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Continues after `last`, the newest stored record (already verified by the caller).
    pub fn resume(last: &AuditRecord) -> Self {
        Self {
            next_seq: last.seq.saturating_add(1),
            last_hash: last.hash.clone(),
        }
    }

    /// The seq the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash the next record will link to.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// Builds the next record without advancing; call [`AuditChain::commit`] once it is stored.
    pub fn prepare(&self, entry: AuditEntry) -> AuditRecord {
        let hash = record_hash(self.next_seq, &self.last_hash, &entry).unwrap_or_default();
        AuditRecord {
            seq: self.next_seq,
            prev_hash: self.last_hash.clone(),
            record: entry,
            hash,
        }
    }

    /// Advances past `record`, which [`AuditChain::prepare`] built and a writer stored.
    pub fn commit(&mut self, record: &AuditRecord) {
        *self = Self::resume(record);
    }

    /// Builds the next record and advances.
    pub fn append(&mut self, entry: AuditEntry) -> AuditRecord {
        let record = self.prepare(entry);
        self.commit(&record);
        record
    }
}

/// Why a chain failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditFault {
    /// A stored line is not a record.
    #[error("not a record: {0}")]
    Malformed(String),
    /// The record's content does not match its hash (it was edited).
    #[error("content does not match its hash")]
    HashMismatch,
    /// The record does not link to the hash of the record before it.
    #[error("prev_hash does not match the previous record's hash")]
    PrevHashMismatch,
    /// The expected seq is absent; a later one came instead (a removal).
    #[error("record missing; found seq {found} instead")]
    Missing {
        /// The seq found at this position.
        found: u64,
    },
    /// Another seq came where the expected one belongs, and the expected one is elsewhere or was
    /// already seen (a reorder or a duplicate).
    #[error("out of order; found seq {found}")]
    OutOfOrder {
        /// The seq found at this position.
        found: u64,
    },
    /// The chain ends before the expected head (its tail was removed) or differs from it.
    #[error("chain does not end at the expected head")]
    HeadMismatch,
}

/// A chain that failed verification, naming the first bad record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {first_bad_seq}: {reason}")]
pub struct AuditError {
    /// The seq of the first bad record (for a removal, the missing seq).
    pub first_bad_seq: u64,
    /// What is wrong with it.
    pub reason: AuditFault,
}

/// Verifies a whole chain, from seq 1.
pub fn verify(records: &[AuditRecord]) -> Result<(), AuditError> {
    verify_from(&AuditChain::new(), records).map(|_| ())
}

/// Verifies records that continue `start`; returns the chain after the last record.
pub fn verify_from(start: &AuditChain, records: &[AuditRecord]) -> Result<AuditChain, AuditError> {
    let mut head = start.clone();
    for record in records {
        let expected = head.next_seq;
        let fail = |reason| AuditError {
            first_bad_seq: expected,
            reason,
        };
        if record.seq > expected {
            let later = records.iter().any(|r| r.seq == expected);
            return Err(fail(if later {
                AuditFault::OutOfOrder { found: record.seq }
            } else {
                AuditFault::Missing { found: record.seq }
            }));
        }
        if record.seq < expected {
            return Err(fail(AuditFault::OutOfOrder { found: record.seq }));
        }
        if !record.hash_is_valid() {
            return Err(fail(AuditFault::HashMismatch));
        }
        if record.prev_hash != head.last_hash {
            return Err(fail(AuditFault::PrevHashMismatch));
        }
        head.commit(record);
    }
    Ok(head)
}

/// Verifies a whole chain and that it ends at the head (`seq`, `hash`) recorded elsewhere, which
/// detects a removed tail.
pub fn verify_with_head(records: &[AuditRecord], seq: u64, hash: &str) -> Result<(), AuditError> {
    let head = verify_from(&AuditChain::new(), records)?;
    if head.next_seq == seq.saturating_add(1) && head.last_hash == hash {
        Ok(())
    } else {
        Err(AuditError {
            first_bad_seq: head.next_seq.min(seq),
            reason: AuditFault::HeadMismatch,
        })
    }
}

/// Parses stored lines (blank lines skipped) into records; a line that is not a record is a
/// `Malformed` fault at the seq it should have had.
pub fn parse_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out: Vec<AuditRecord> = Vec::new();
    for line in lines.into_iter().filter(|l| !l.trim().is_empty()) {
        match AuditRecord::from_line(line) {
            Ok(record) => out.push(record),
            Err(e) => {
                let at = out.last().map_or(1, |r| r.seq.saturating_add(1));
                return Err(AuditError {
                    first_bad_seq: at,
                    reason: AuditFault::Malformed(e.to_string()),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at_us: 1_000 + n,
            tenant: "acme".into(),
            kind: "proposal".into(),
            actor: format!("agent-{n}"),
            role: "dataplane".into(),
            subject: format!("prop_{n:03}"),
            outcome: "received".into(),
            detail: BTreeMap::from([("variant_id".into(), n.to_string())]),
        }
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut c = AuditChain::new();
        (1..=n).map(|i| c.append(entry(i))).collect()
    }

    fn check(records: &[AuditRecord], expected: &Result<(), (u64, AuditFault)>) {
        let got = verify(records).map_err(|e| (e.first_bad_seq, e.reason));
        assert_eq!(&got, expected);
    }

    // AC-GOV-12
    #[test]
    fn untouched_chain_verifies_and_links() {
        let records = chain(5);
        check(&records, &Ok(()));
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
            assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
        check(&[], &Ok(()));
    }

    // AC-GOV-12
    #[test]
    fn edited_record_is_named() {
        let mut records = chain(5);
        records[2].record.outcome = "approved".into();
        check(&records, &Err((3, AuditFault::HashMismatch)));

        let mut records = chain(5);
        records[3].record.detail.insert("extra".into(), "x".into());
        check(&records, &Err((4, AuditFault::HashMismatch)));

        // An edit whose hash was recomputed breaks the next link.
        let mut records = chain(5);
        records[1].record.actor = "mallory".into();
        records[1].hash =
            record_hash(records[1].seq, &records[1].prev_hash, &records[1].record).unwrap();
        check(&records, &Err((3, AuditFault::PrevHashMismatch)));
    }

    // AC-GOV-12
    #[test]
    fn removed_record_is_named() {
        let mut records = chain(5);
        records.remove(2);
        check(&records, &Err((3, AuditFault::Missing { found: 4 })));

        let mut records = chain(5);
        records.remove(0);
        check(&records, &Err((1, AuditFault::Missing { found: 2 })));
    }

    // AC-GOV-12
    #[test]
    fn reordered_records_are_named() {
        let mut records = chain(5);
        records.swap(1, 3);
        check(&records, &Err((2, AuditFault::OutOfOrder { found: 4 })));

        let mut records = chain(5);
        records.swap(3, 4);
        check(&records, &Err((4, AuditFault::OutOfOrder { found: 5 })));

        let mut records = chain(5);
        let dup = records[1].clone();
        records.insert(2, dup);
        check(&records, &Err((3, AuditFault::OutOfOrder { found: 2 })));
    }

    #[test]
    fn renumbered_removal_is_named() {
        // Remove record 3 and renumber the rest: the renumbered records' hashes no longer match.
        let mut records = chain(5);
        records.remove(2);
        for r in &mut records[2..] {
            r.seq -= 1;
        }
        check(&records, &Err((3, AuditFault::HashMismatch)));
    }

    #[test]
    fn tail_removal_needs_a_head() {
        let records = chain(5);
        let head = records[4].clone();
        assert!(verify_with_head(&records, head.seq, &head.hash).is_ok());
        let err = verify_with_head(&records[..3], head.seq, &head.hash).unwrap_err();
        assert_eq!(
            (err.first_bad_seq, err.reason),
            (4, AuditFault::HeadMismatch)
        );
    }

    #[test]
    fn lines_round_trip_and_bad_lines_are_named() {
        let records = chain(3);
        let text: Vec<String> = records.iter().map(AuditRecord::to_line).collect();
        let parsed = parse_lines(text.iter().map(String::as_str)).unwrap();
        assert_eq!(parsed, records);
        assert!(text[0].starts_with(r#"{"seq":1,"prev_hash":"0000"#));

        let mut bad = text.clone();
        bad[1] = bad[1].replace(r#""seq":2"#, r#""seq":2,"x":1"#);
        let err = parse_lines(bad.iter().map(String::as_str)).unwrap_err();
        assert_eq!(err.first_bad_seq, 2);
        assert!(matches!(err.reason, AuditFault::Malformed(_)));
    }

    #[test]
    fn resume_continues_the_chain() {
        let records = chain(3);
        let mut c = AuditChain::resume(&records[2]);
        let mut all = records.clone();
        all.push(c.append(entry(4)));
        check(&all, &Ok(()));
        let tail = verify_from(&AuditChain::resume(&records[2]), &all[3..]).unwrap();
        assert_eq!(tail.next_seq(), 5);
    }

    #[test]
    fn uppercase_or_short_prev_hash_is_not_canonical() {
        let e = entry(1);
        assert!(record_hash(1, &"A".repeat(64), &e).is_none());
        assert!(record_hash(1, "00", &e).is_none());
        let mut records = chain(1);
        records[0].prev_hash = "zz".into();
        check(&records, &Err((1, AuditFault::HashMismatch)));
    }

    #[test]
    fn golden_first_hash() {
        // Pins the canonical form: changing the hashing breaks every stored log.
        let record = AuditChain::new().append(entry(1));
        assert_eq!(
            record.hash,
            "ae9d2ba29a6c0b8d4020f1db6e06d974a9c80cb6de7521294ccb434bab02ffb8"
        );
    }
}

#[cfg(test)]
mod properties {
    //! Random chains and random tampering (fixed seed): each is named at the right seq.

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Tamper {
        Edit(usize),
        Remove(usize),
        Swap(usize, usize),
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 500,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xA0D1_7C4A),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut c = AuditChain::new();
        (0..n)
            .map(|i| {
                c.append(AuditEntry {
                    at_us: i as u64,
                    kind: "k".into(),
                    subject: format!("s{i}"),
                    ..AuditEntry::default()
                })
            })
            .collect()
    }

    proptest! {
        #![proptest_config(config())]

        // AC-GOV-12
        #[test]
        fn any_tampering_is_named_at_the_first_bad_seq(
            n in 2usize..25,
            pick in (0usize..1000, 0usize..1000, 0u8..3),
        ) {
            let mut records = chain(n);
            prop_assert!(verify(&records).is_ok());
            let (a, b, op) = pick;
            let i = a % (n - 1);
            let tamper = match op {
                0 => Tamper::Edit(a % n),
                1 => Tamper::Remove(i),
                _ => Tamper::Swap(i, i + 1 + b % (n - 1 - i)),
            };
            let expected = match tamper {
                Tamper::Edit(k) => {
                    records[k].record.outcome.push('!');
                    (k as u64 + 1, AuditFault::HashMismatch)
                }
                Tamper::Remove(k) => {
                    records.remove(k);
                    (k as u64 + 1, AuditFault::Missing { found: k as u64 + 2 })
                }
                Tamper::Swap(k, l) => {
                    records.swap(k, l);
                    (k as u64 + 1, AuditFault::OutOfOrder { found: l as u64 + 1 })
                }
            };
            let err = verify(&records).unwrap_err();
            prop_assert_eq!((err.first_bad_seq, err.reason), expected);
        }
    }
}
