//! The writer task of a session: owns the socket's sink and drains the bounded outbound queue in
//! bursts, one flush (one `send`) per burst.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use tokio::sync::oneshot;

/// Writes queued frames until the queue closes or `close` fires; then sends the close frame with
/// the code `close` carried, if any.
pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbound: flume::Receiver<Bytes>,
    mut close: oneshot::Receiver<Option<u16>>,
) {
    let code = loop {
        tokio::select! {
            biased;
            code = &mut close => {
                // Flush what is already queued, then close.
                for frame in outbound.drain() {
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                break code.ok().flatten();
            }
            frame = outbound.recv_async() => match frame {
                Ok(frame) => {
                    if write_burst(&mut sink, frame, &outbound).await.is_err() {
                        return;
                    }
                }
                Err(flume::RecvError::Disconnected) => break (&mut close).await.ok().flatten(),
            },
        }
    };
    if let Some(code) = code {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

/// Looks at the queue again while a burst has fewer frames than this; then it is flushed.
const WRITE_BURST: usize = 256;

/// Writes `first` and whatever else is queued, then flushes once: a burst is written with one
/// syscall instead of one per frame.
///
/// The queue is taken whole (one lock for the lot). When a look finds frames the writer yields to
/// the scheduler and looks again: while the hub is fanning out a run of messages, those it queues
/// meanwhile leave in the same `send` (a loopback `send` costs about as much as writing fifty
/// frames), up to [`WRITE_BURST`] frames. A quiet node finds nothing on the second look, so a lone
/// message waits one scheduler turn.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Bytes,
    outbound: &flume::Receiver<Bytes>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Binary(first)).await?;
    let mut written = 1;
    // The frames written since the last yield; `first` counts, so a burst always looks twice.
    let mut since_yield = 1;
    while written < WRITE_BURST {
        for frame in outbound.drain() {
            written += 1;
            since_yield += 1;
            sink.feed(Message::Binary(frame)).await?;
        }
        if since_yield == 0 {
            break;
        }
        since_yield = 0;
        tokio::task::yield_now().await;
    }
    sink.flush().await
}
