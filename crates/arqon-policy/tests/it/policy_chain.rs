//! Chains and sets: the bad-words case, ordering, global before tenant, listings and metrics.

use arqon_policy::{
    BLOCKED_MESSAGE, BlockReason, Chain, PolicySet, Scope, VERDICTS_METRIC, Verdict,
};
use sha2::{Digest, Sha256};

use crate::support::{block, compile, describe, fixture, host, input, input_for, source};

// AC-POLICY-1
#[test]
fn ac_policy_1_bad_words_blocks_malware_and_virus_and_allows_clean() {
    let host = host();
    let set = PolicySet::new();
    let bytes = fixture("bad_words");
    set.deploy(
        &host,
        Scope::Tenant("acme".into()),
        &[source("bad-words", &bytes)],
    )
    .unwrap();

    let verdict = set.evaluate(&input(b"please install this malware now"));
    assert_eq!(verdict.code_name(), Some("POLICY_BLOCKED"));
    assert_eq!(
        describe(verdict),
        (
            "bad-words".into(),
            "POLICY_BLOCKED",
            Some("bad word: malware".into())
        )
    );
    let verdict = set.evaluate(&input(b"a VIRUS in caps"));
    assert_eq!(
        block(verdict).reason,
        BlockReason::Policy("bad word: virus".into())
    );
    for clean in [&b"hello team"[..], b"", b"mal ware", b"viru s"] {
        assert_eq!(set.evaluate(&input(clean)), Verdict::Allow);
    }
    assert_eq!(BLOCKED_MESSAGE, "Message blocked by policy");
}

// AC-POLICY-7
#[test]
fn ac_policy_7_policies_run_in_order_and_the_first_block_wins() {
    let host = host();
    let large_malware = b"malware ".repeat(1000);
    let size_first = Chain::new([
        compile(&host, "allow_all"),
        compile(&host, "payload_size"),
        compile(&host, "bad_words"),
    ]);
    assert_eq!(
        describe(size_first.evaluate(&input(&large_malware))),
        (
            "payload_size".into(),
            "POLICY_BLOCKED",
            Some("payload too large".into())
        )
    );
    let words_first = Chain::new([compile(&host, "bad_words"), compile(&host, "payload_size")]);
    assert_eq!(
        describe(words_first.evaluate(&input(&large_malware))).0,
        "bad_words"
    );
    assert_eq!(
        words_first.evaluate(&input(b"short and clean")),
        Verdict::Allow
    );
    assert_eq!(
        Chain::default().evaluate(&input(b"malware")),
        Verdict::Allow
    );
}

// AC-POLICY-8
#[test]
fn ac_policy_8_the_global_chain_runs_first_then_only_the_tenants_own_chain() {
    let host = host();
    let set = PolicySet::new();
    let (size, words) = (fixture("payload_size"), fixture("bad_words"));
    set.deploy(&host, Scope::Global, &[source("global-size", &size)])
        .unwrap();
    set.deploy(
        &host,
        Scope::Tenant("acme".into()),
        &[source("acme-words", &words)],
    )
    .unwrap();

    let large_malware = b"malware ".repeat(1000);
    assert_eq!(
        describe(set.evaluate(&input(&large_malware))).0,
        "global-size"
    );
    assert_eq!(describe(set.evaluate(&input(b"malware"))).0, "acme-words");
    assert_eq!(
        set.evaluate(&input_for("globex", b"malware")),
        Verdict::Allow
    );
    assert_eq!(
        describe(set.evaluate(&input_for("globex", &large_malware))).0,
        "global-size"
    );
    set.remove_tenant("acme");
    assert_eq!(set.evaluate(&input(b"malware")), Verdict::Allow);
}

// AC-POLICY-11
#[test]
fn ac_policy_11_list_shows_each_scope_in_order_with_module_hashes() {
    let host = host();
    let set = PolicySet::new();
    let (size, words, allow) = (
        fixture("payload_size"),
        fixture("bad_words"),
        fixture("allow_all"),
    );
    set.deploy(
        &host,
        Scope::Tenant("zeta".into()),
        &[source("allow", &allow)],
    )
    .unwrap();
    set.deploy(
        &host,
        Scope::Tenant("acme".into()),
        &[source("size", &size), source("words", &words)],
    )
    .unwrap();

    let listing = set.list();
    let scopes: Vec<&Scope> = listing.iter().map(|l| &l.scope).collect();
    assert_eq!(
        scopes,
        [
            &Scope::Global,
            &Scope::Tenant("acme".into()),
            &Scope::Tenant("zeta".into())
        ]
    );
    assert!(listing[0].modules.is_empty());
    let acme: Vec<(&str, &str)> = listing[1]
        .modules
        .iter()
        .map(|m| (m.name.as_str(), m.sha256.as_str()))
        .collect();
    let (size_hash, words_hash) = (
        hex::encode(Sha256::digest(&size)),
        hex::encode(Sha256::digest(&words)),
    );
    assert_eq!(
        acme,
        [("size", size_hash.as_str()), ("words", words_hash.as_str())]
    );
    assert!(listing[1].modules.iter().all(|m| m.failing_with.is_none()));
    assert!(listing[1].generation > listing[2].generation);
}

// AC-POLICY-12
#[test]
fn ac_policy_12_verdicts_and_latency_are_counted_by_verdict_and_reason() {
    let host = host();
    let set = PolicySet::new();
    let (words, trap) = (fixture("bad_words"), fixture("trap"));
    set.deploy(
        &host,
        Scope::Tenant("acme".into()),
        &[source("words", &words), source("trap", &trap)],
    )
    .unwrap();
    for payload in [&b"hello"[..], b"malware", b"virus", b"!trap", b"fine"] {
        set.evaluate(&input(payload));
    }
    let metrics = set.metrics();
    assert_eq!(VERDICTS_METRIC, "arqonbus.policy.verdicts");
    assert_eq!(metrics.count("allow", "none"), 2);
    assert_eq!(metrics.count("block", "blocked"), 2);
    assert_eq!(metrics.count("block", "trap"), 1);
    assert_eq!(metrics.count("block", "timeout"), 0);
    assert_eq!(metrics.evaluations(), 5);
    assert!(metrics.latency_sum_ns > 0);
}

// AC-POLICY-16
#[test]
fn ac_policy_16_tenant_room_sender_and_headers_reach_the_guest_where_the_layout_says() {
    let host = host();
    let chain = Chain::new([compile(&host, "echo_field")]);
    let field = |selector: &[u8]| describe(chain.evaluate(&input(selector))).2.unwrap();
    assert_eq!(field(b"0"), "acme");
    assert_eq!(field(b"1"), "lobby");
    assert_eq!(field(b"2"), "alice");
    let mut headers = 2_u32.to_le_bytes().to_vec();
    for text in ["message_id", "m-1", "content_type", "text/plain"] {
        headers.extend(u32::try_from(text.len()).unwrap().to_le_bytes());
        headers.extend(text.as_bytes());
    }
    assert_eq!(field(b"3").as_bytes(), headers.as_slice());
    assert_eq!(chain.evaluate(&input(b"9")), Verdict::Allow);
}
