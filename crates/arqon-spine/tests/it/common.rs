//! Helpers shared by the Spine integration tests: names, bounded waits and route probes.

use std::time::Duration;

use arqon_proto::names::{RoomName, TenantId};
use arqon_spine::{Bytes, Headers, Message, Spine, Subject, Subscription};

/// Longest wait for one expected message.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Header marking route probes, which data readers skip.
pub(crate) const PROBE: &str = "x-probe";

pub(crate) fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

pub(crate) fn room(tenant_id: &str, room_name: &str) -> Subject {
    Subject::room(&tenant(tenant_id), &RoomName::parse(room_name).unwrap())
}

/// The next message, or a test failure after [`WAIT`].
pub(crate) async fn recv(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .unwrap_or_else(|_| panic!("no message on {} within {WAIT:?}", sub.subject()))
        .expect("subscription ended")
}

/// The next message that is not a route probe.
pub(crate) async fn recv_data(sub: &mut Subscription) -> Message {
    loop {
        let message = recv(sub).await;
        if message.headers.get(PROBE).is_none() {
            return message;
        }
    }
}

/// Publishes `payload` with no headers.
pub(crate) async fn publish(spine: &dyn Spine, subject: &Subject, payload: &[u8]) {
    spine
        .publish(subject, Headers::new(), Bytes::copy_from_slice(payload))
        .await
        .unwrap();
}

/// Waits until a message published through `from` reaches `sub`: across a NATS cluster, interest
/// travels over routes after `subscribe` returns. Probes carry [`PROBE`]; read data with [`recv_data`].
/// Returns the data messages that arrived meanwhile, in order.
pub(crate) async fn await_route(from: &dyn Spine, sub: &mut Subscription) -> Vec<Message> {
    let subject = sub.subject().clone();
    let mut data = Vec::new();
    let probing = async {
        loop {
            let headers = Headers::new().with(PROBE, "1").unwrap();
            from.publish(&subject, headers, Bytes::new()).await.unwrap();
            from.flush().await.unwrap();
            while let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(100), sub.recv()).await
            {
                if m.headers.get(PROBE).is_some() {
                    return;
                }
                data.push(m);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), probing)
        .await
        .expect("the route never carried a probe");
    data
}

/// Publishes `count` numbered messages (`u32` big-endian) starting at `first`.
pub(crate) async fn publish_numbered(spine: &dyn Spine, subject: &Subject, first: u32, count: u32) {
    for n in first..first + count {
        publish(spine, subject, &n.to_be_bytes()).await;
    }
    spine.flush().await.unwrap();
}

/// Reads `count` data messages and checks they are `first..first+count`, in order.
pub(crate) async fn expect_numbered(sub: &mut Subscription, first: u32, count: u32) {
    for n in first..first + count {
        let m = recv_data(sub).await;
        assert_eq!(number(&m), n, "out of order or lost");
    }
}

/// The number carried by a numbered message.
pub(crate) fn number(message: &Message) -> u32 {
    u32::from_be_bytes(message.payload[..4].try_into().unwrap())
}
