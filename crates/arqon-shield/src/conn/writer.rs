//! The writer task of a session: owns the socket's sink and drains the bounded outbound queue in
//! bursts, one flush (one `send`) per burst.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use tokio::sync::{mpsc, oneshot};

/// Writes queued frames until the queue closes or `close` fires; then sends the close frame with
/// the code `close` carried, if any.
pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: mpsc::Receiver<Bytes>,
    mut close: oneshot::Receiver<Option<u16>>,
) {
    let code = loop {
        tokio::select! {
            biased;
            code = &mut close => {
                // Flush what is already queued, then close.
                while let Ok(frame) = outbound.try_recv() {
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                break code.ok().flatten();
            }
            frame = outbound.recv() => match frame {
                Some(frame) => {
                    if write_burst(&mut sink, frame, &mut outbound).await.is_err() {
                        return;
                    }
                }
                None => break (&mut close).await.ok().flatten(),
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

/// Most frames one flush may carry: a burst is written with one syscall instead of one per frame.
const WRITE_BURST: usize = 256;

/// Writes `first` and whatever else is already queued (up to [`WRITE_BURST`]), then flushes once.
///
/// When the queue runs dry the writer yields to the scheduler and looks again, as long as the last
/// look found new frames: while the hub is fanning out a run of messages, those it queues meanwhile
/// leave in the same `send` (a loopback `send` costs about as much as writing fifty frames). A quiet
/// node finds nothing on the first look, so a lone message waits one scheduler turn.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Bytes,
    outbound: &mut mpsc::Receiver<Bytes>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Binary(first)).await?;
    let mut written = 1;
    let mut since_yield = 1;
    while written < WRITE_BURST {
        match outbound.try_recv() {
            Ok(frame) => {
                sink.feed(Message::Binary(frame)).await?;
                written += 1;
                since_yield += 1;
            }
            Err(_) if since_yield > 0 => {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            Err(_) => break,
        }
    }
    sink.flush().await
}
