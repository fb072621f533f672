//! Unit tests of the client's request bookkeeping: answers, refusals and pending requests.

use super::*;

fn runner() -> (Runner, mpsc::Receiver<Event>) {
    let (_outgoing, outgoing_rx) = mpsc::channel(4);
    let (governance, _) = mpsc::channel(4);
    let (events_tx, events) = mpsc::channel(4);
    let runner = Runner {
        url: String::new(),
        token: String::new(),
        reconnect: Reconnect::new(Backoff::default(), Jitter::new(1)),
        rooms: BTreeMap::new(),
        sent: 0,
        pending: VecDeque::new(),
        governance_ids: BTreeSet::new(),
        outgoing: outgoing_rx,
        governance,
        events: events_tx,
        backlog: VecDeque::new(),
    };
    (runner, events)
}

/// Dispatches as the session loop does, queueing the event without waiting.
fn deliver(runner: &mut Runner, envelope: Envelope) {
    if let Some(event) = runner.dispatch(envelope) {
        runner.emit(event);
    }
}

fn error_reply(correlation_id: &str, code: v1::ErrorCode) -> Envelope {
    arqon_proto::outbound::envelope(
        Header {
            correlation_id: correlation_id.to_owned(),
            ..Header::default()
        },
        v1::Error {
            code: code.into(),
            message: "refused".to_owned(),
            correlation_id: correlation_id.to_owned(),
            retry_after_ms: 0,
        },
    )
}

fn join(runner: &mut Runner, room: &str) -> oneshot::Receiver<Result<(), ClientError>> {
    let (answer, answered) = oneshot::channel();
    let body = Body::Join(v1::Join {
        room: room.to_owned(),
        ..v1::Join::default()
    });
    let _ = runner.frame(Outgoing::Request(body, answer));
    answered
}

// AC-SDK-12: a correlated error fails its own request; an uncorrelated one fails the oldest
// pending request only when exactly one is pending, else it goes to the event stream.
#[test]
fn ac_sdk_12_errors_answer_their_request_or_the_only_one_pending() {
    let (mut runner, mut events) = runner();
    let mut first = join(&mut runner, "a");
    let mut second = join(&mut runner, "b");
    deliver(&mut runner, error_reply("c-2", v1::ErrorCode::RoomLimit));
    assert!(matches!(
        second.try_recv(),
        Ok(Err(ClientError::Server(Refusal::RoomLimit { .. })))
    ));
    // A refused join is not joined again on reconnect.
    assert!(!runner.rooms.contains_key("b") && runner.rooms.contains_key("a"));
    // Exactly one pending: the uncorrelated error is its answer.
    deliver(&mut runner, error_reply("", v1::ErrorCode::ProtocolError));
    assert!(matches!(
        first.try_recv(),
        Ok(Err(ClientError::Server(Refusal::Protocol { .. })))
    ));
    // Two pending: ambiguous, so it goes to the event stream and both still wait.
    let mut third = join(&mut runner, "c");
    let mut fourth = join(&mut runner, "d");
    deliver(&mut runner, error_reply("", v1::ErrorCode::TextFrame));
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Error {
            code: v1::ErrorCode::TextFrame,
            ..
        })
    ));
    assert!(third.try_recv().is_err() && fourth.try_recv().is_err());
    // An Ack answers its request; a lost connection answers the rest.
    deliver(
        &mut runner,
        arqon_proto::outbound::envelope(
            Header {
                correlation_id: "c-3".to_owned(),
                ..Header::default()
            },
            v1::Ack::default(),
        ),
    );
    assert!(matches!(third.try_recv(), Ok(Ok(()))));
    runner.lose_pending();
    assert!(matches!(
        fourth.try_recv(),
        Ok(Err(ClientError::ConnectionLost))
    ));
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let waits: Vec<u128> = (0..6).map(|a| backoff.delay(a).as_millis()).collect();
    assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
}

// AC-SHIELD-21: the clients come back no sooner than the server says, and with jitter.
#[test]
fn ac_shield_21_a_reconnect_never_comes_sooner_than_the_server_asked() {
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(5),
    };
    let mut reconnect = Reconnect::new(backoff, Jitter::new(11));
    for attempt in 0..50 {
        reconnect.server_asked(Some(Duration::from_secs(2)));
        let wait = reconnect.next_wait(attempt % 4);
        assert!(
            (Duration::from_secs(2)..=Duration::from_secs(3)).contains(&wait),
            "{wait:?}"
        );
    }
    // The floor holds for one attempt only; then the backoff alone decides again.
    reconnect.server_asked(Some(Duration::from_secs(2)));
    let _ = reconnect.next_wait(0);
    let wait = reconnect.next_wait(0);
    assert!(wait <= Duration::from_millis(75), "{wait:?}");
    // A backoff longer than the server's floor wins.
    reconnect.server_asked(Some(Duration::from_millis(10)));
    let wait = reconnect.next_wait(10);
    assert!(wait >= Duration::from_secs(5), "{wait:?}");
}

#[test]
fn jitter_stays_between_the_wait_and_half_again_and_spreads() {
    let mut jitter = Jitter::new(7);
    let wait = Duration::from_secs(1);
    let waits: BTreeSet<u128> = (0..200).map(|_| jitter.stretch(wait).as_millis()).collect();
    assert!(
        waits.iter().all(|ms| (1000..=1500).contains(ms)),
        "{waits:?}"
    );
    // 200 draws over 501 values: a synchronised crowd would give one.
    assert!(waits.len() > 100, "{} distinct waits", waits.len());
    assert_eq!(jitter.stretch(Duration::ZERO), Duration::ZERO);
}
