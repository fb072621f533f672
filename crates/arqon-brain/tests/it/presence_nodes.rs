//! Presence across Shield nodes: real sockets, real `nats-server` cluster, the Brain driver in
//! every node (`specs/presence.md`, "Driver").

use std::collections::BTreeSet;
use std::time::Duration;

use arqon_auth::Role;
use arqon_config::{Config, SpineKind};
use arqon_proto::names::{RoomName, TenantId};
use arqon_proto::v1::{self, PresenceUpdateKind};
use arqon_shield::Node;
use arqon_testkit::{DelayProxy, JwtIssuer, NatsCluster, WsClient};

const ROOM: &str = "lobby";
/// Longest wait for any one presence event (node expiry is 1 s in these configs).
const WAIT: Duration = Duration::from_secs(10);

fn config(issuer: &JwtIssuer, nats: Option<String>, id: &str) -> Config {
    let mut config = Config::dev_default();
    id.clone_into(&mut config.node.id);
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.drain_timeout = arqon_config::Duration::from_secs(1);
    config.auth.jwks = Some(issuer.jwks_json());
    config.auth.leeway = arqon_config::Duration::from_secs(0);
    config.presence.node_heartbeat_interval = arqon_config::Duration::from_millis(200);
    config.presence.node_expiry = arqon_config::Duration::from_millis(1000);
    if let Some(url) = nats {
        config.spine.kind = SpineKind::Nats;
        config.spine.nats_urls = vec![url];
    }
    config
}

/// Connects as `tenant`/`user` and returns the client and its session id.
async fn connect(issuer: &JwtIssuer, url: &str, tenant: &str, user: &str) -> (WsClient, String) {
    let token = issuer
        .token(tenant, user, Role::User, Duration::from_mins(5))
        .unwrap();
    let mut client = WsClient::connect(url, &token).await.unwrap();
    client.set_timeout(WAIT);
    let welcome = client.expect_welcome().await.unwrap();
    (client, welcome.session_id)
}

async fn join(client: &mut WsClient, room: &str, meta: &[(&str, &str)]) {
    client
        .send_body(v1::Join {
            room: room.to_owned(),
            metadata: meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            since: None,
        })
        .await
        .unwrap();
    client.expect_ack().await.unwrap();
}

/// Reads presence updates until one of `kind` names `session`; returns that member.
async fn until_update(
    client: &mut WsClient,
    kind: PresenceUpdateKind,
    session: &str,
) -> v1::Member {
    loop {
        let update = client.expect_presence_update().await.unwrap();
        if update.kind() != kind {
            continue;
        }
        if let Some(member) = update.members.into_iter().find(|m| m.session_id == session) {
            return member;
        }
    }
}

/// Reads presence notices until every session of `gone` has left; returns the leaves seen.
async fn until_left(client: &mut WsClient, gone: &[&str]) -> Vec<String> {
    let mut left = Vec::new();
    while !gone.iter().all(|s| left.iter().any(|l| l == s)) {
        let (_, body) = client
            .expect("presence", |body| match body {
                v1::envelope::Body::PresenceLeave(leave) => Some(Some(leave.session_id)),
                v1::envelope::Body::PresenceUpdate(_) => Some(None),
                _ => None,
            })
            .await
            .unwrap();
        left.extend(body);
    }
    left
}

fn sessions(members: &[arqon_core::presence::Member]) -> BTreeSet<String> {
    members.iter().map(|m| m.session.0.clone()).collect()
}

/// Starts a node on its own runtime, so that shutting that runtime down kills the node the way
/// kill -9 does: no task runs again, no clean leave is sent.
async fn start_killable(config: Config) -> (Node, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let node = runtime
        .spawn(async move { Node::start(config).await.unwrap() })
        .await
        .unwrap();
    (node, runtime)
}

// AC-PRESENCE-10, AC-PRESENCE-11, AC-PRESENCE-12
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_two_nodes_join_reset_kill_restart_converge() {
    let issuer = JwtIssuer::with_seed(5).unwrap();
    let cluster = NatsCluster::start(3).await.unwrap();
    let node1 = Node::start(config(&issuer, Some(cluster.node(0).url()), "n1"))
        .await
        .unwrap();
    let mut config2 = config(&issuer, Some(cluster.node(1).url()), "n2");
    // Node 2's sessions expire after 2 s of silence (B's, once its link goes quiet).
    config2.session.heartbeat_interval = arqon_config::Duration::from_millis(500);
    config2.session.idle_timeout = arqon_config::Duration::from_secs(2);
    let (node2, runtime2) = start_killable(config2.clone()).await;
    let url2 = node2.socket_url();

    // AC-PRESENCE-10: A on node 1, then B on node 2: A sees B, B's snapshot lists A.
    let (mut alice, alice_ref) = connect(&issuer, &node1.socket_url(), "acme", "alice").await;
    join(&mut alice, ROOM, &[("status", "busy")]).await;
    let proxy = DelayProxy::start(node2.local_addr(), Duration::ZERO)
        .await
        .unwrap();
    let proxied = format!("ws://{}/v1/socket", proxy.addr());
    let (mut bob, bob_ref) = connect(&issuer, &proxied, "acme", "bob").await;
    join(&mut bob, ROOM, &[]).await;
    let seen = until_update(&mut alice, PresenceUpdateKind::Join, &bob_ref).await;
    assert_eq!(seen.user_id, "bob");
    assert_eq!(seen.node_id, "n2");
    let listed = until_update(&mut bob, PresenceUpdateKind::Snapshot, &alice_ref).await;
    assert_eq!(
        listed.metadata.get("status").map(String::as_str),
        Some("busy")
    );

    // AC-PRESENCE-11: B's link goes silent (no close frame, no FIN: the proxy holds every byte),
    // so node 2 only learns it from the session heartbeat expiry; A then gets B's leave.
    proxy.set_delay(Duration::from_hours(1));
    let left = until_left(&mut alice, &[&bob_ref]).await;
    assert_eq!(left, vec![bob_ref.clone()]);

    // AC-PRESENCE-12: node 2 dies with two members: A sees both leave within the expiry.
    let (mut carol, carol_ref) = connect(&issuer, &url2, "acme", "carol").await;
    join(&mut carol, ROOM, &[]).await;
    let (mut dave, dave_ref) = connect(&issuer, &url2, "acme", "dave").await;
    join(&mut dave, ROOM, &[]).await;
    until_update(&mut alice, PresenceUpdateKind::Join, &carol_ref).await;
    until_update(&mut alice, PresenceUpdateKind::Join, &dave_ref).await;
    runtime2.shutdown_background();
    drop(node2);
    let left = until_left(&mut alice, &[&carol_ref, &dave_ref]).await;
    // Exactly one leave each, and B's leave is not repeated.
    let unique: BTreeSet<&String> = left.iter().collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(unique.len(), 2);
    assert!(!left.contains(&bob_ref));
    drop((carol, dave));

    // Node 2 restarts and a client rejoins: both nodes list the same members.
    let (node2, runtime2) = start_killable(config2).await;
    let (mut erin, erin_ref) = connect(&issuer, &node2.socket_url(), "acme", "erin").await;
    join(&mut erin, ROOM, &[]).await;
    until_update(&mut alice, PresenceUpdateKind::Join, &erin_ref).await;
    let snapshot = until_update(&mut erin, PresenceUpdateKind::Snapshot, &alice_ref).await;
    assert_eq!(snapshot.session_id, alice_ref);
    let tenant = TenantId::parse("acme").unwrap();
    let room = RoomName::parse(ROOM).unwrap();
    let on1 = sessions(&node1.presence_members(&tenant, &room).await);
    let on2 = sessions(&node2.presence_members(&tenant, &room).await);
    assert_eq!(on1, BTreeSet::from([alice_ref.clone(), erin_ref.clone()]));
    assert_eq!(on1, on2);
    runtime2.shutdown_background();
}

// AC-PRESENCE-13, AC-PRESENCE-14, AC-PRESENCE-15
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_embedded_single_node_and_tenant_isolation() {
    let issuer = JwtIssuer::with_seed(6).unwrap();
    let node = Node::start(config(&issuer, None, "solo")).await.unwrap();
    let url = node.socket_url();
    let (mut alice, alice_ref) = connect(&issuer, &url, "acme", "alice").await;
    join(&mut alice, ROOM, &[]).await;
    let (mut gina, gina_ref) = connect(&issuer, &url, "globex", "gina").await;
    join(&mut gina, ROOM, &[]).await;
    // AC-PRESENCE-14: the same room name in another tenant shows only its own members.
    let own = until_update(&mut gina, PresenceUpdateKind::Snapshot, &gina_ref).await;
    assert_eq!(own.user_id, "gina");
    let (mut amy, amy_ref) = connect(&issuer, &url, "acme", "amy").await;
    join(&mut amy, ROOM, &[]).await;
    // A's next join notice is amy's (gina's never reaches acme); amy's snapshot has acme only.
    // (A's own join notice and snapshot come first.)
    let next = loop {
        let update = alice.expect_presence_update().await.unwrap();
        if !update.members.iter().all(|m| m.session_id == alice_ref) {
            break update;
        }
    };
    assert_eq!(next.kind(), PresenceUpdateKind::Join);
    assert_eq!(next.members.len(), 1);
    assert_eq!(next.members[0].session_id, amy_ref);
    let snapshot = loop {
        let update = amy.expect_presence_update().await.unwrap();
        if update.kind() == PresenceUpdateKind::Snapshot {
            break update;
        }
    };
    let listed: BTreeSet<String> = snapshot.members.into_iter().map(|m| m.session_id).collect();
    assert_eq!(listed, BTreeSet::from([alice_ref.clone(), amy_ref.clone()]));
    // AC-PRESENCE-15: the list on request, one member per page, the correlation id echoed.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let mut header = alice.header();
        header.correlation_id = format!("list-{}", paged.len());
        let request = v1::PresenceRequest {
            room: ROOM.to_owned(),
            page_size: 1,
            page_token: token.clone(),
        };
        alice
            .send(&arqon_proto::outbound::envelope(header.clone(), request))
            .await
            .unwrap();
        let (reply, page) = loop {
            let (reply, page) = alice
                .expect("presence_update", |body| match body {
                    v1::envelope::Body::PresenceUpdate(page) => Some(page),
                    _ => None,
                })
                .await
                .unwrap();
            if reply.correlation_id == header.correlation_id {
                break (reply, page);
            }
        };
        assert_eq!(reply.correlation_id, header.correlation_id);
        assert_eq!(page.kind(), PresenceUpdateKind::Snapshot);
        assert_eq!(page.members.len(), 1);
        paged.extend(page.members.into_iter().map(|m| m.session_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut expected = vec![alice_ref.clone(), amy_ref.clone()];
    expected.sort();
    assert_eq!(paged, expected);
    // Only a member of the room may read it.
    let request = v1::PresenceRequest {
        room: "elsewhere".to_owned(),
        ..v1::PresenceRequest::default()
    };
    alice.send_body(request).await.unwrap();
    let refused = alice.expect_error().await.unwrap();
    assert_eq!(refused.code(), v1::ErrorCode::NotInRoom);
    // AC-PRESENCE-13: an explicit leave on the embedded spine reaches the room once.
    amy.leave(ROOM).await.unwrap();
    let left = until_left(&mut alice, &[&amy_ref]).await;
    assert_eq!(left, vec![amy_ref]);
    let tenant = TenantId::parse("globex").unwrap();
    let room = RoomName::parse(ROOM).unwrap();
    assert_eq!(
        sessions(&node.presence_members(&tenant, &room).await),
        BTreeSet::from([gina_ref])
    );
}
