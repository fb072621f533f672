//! The writer task of a session: owns the socket's sink and drains the bounded outbound queue in
//! bursts, one flush (one `send`) per burst; to a client that offered `arqon.v1.batch`, a burst
//! goes as batch frames (`arqon_proto::batch`).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use futures_util::stream::SplitSink;
use tokio::sync::oneshot;

use crate::metrics::{Metrics, add};

/// Writes queued frames until the queue closes or `close` fires; then sends the close frame with
/// the code `close` carried, if any. With `batch` (where batch frames are counted), each burst is
/// packed into batch frames.
pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbound: flume::Receiver<Bytes>,
    mut close: oneshot::Receiver<Option<u16>>,
    batch: Option<Arc<Metrics>>,
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
                    if write_burst(&mut sink, frame, &outbound, batch.as_ref()).await.is_err() {
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
    batch: Option<&Arc<Metrics>>,
) -> Result<(), axum::Error> {
    let mut burst = Burst::new(batch);
    burst.write(sink, first).await?;
    // The frames written since the last yield; `first` counts, so a burst always looks twice.
    let mut since_yield = 1;
    while burst.len < WRITE_BURST {
        for frame in outbound.drain() {
            since_yield += 1;
            burst.write(sink, frame).await?;
        }
        if since_yield == 0 {
            break;
        }
        since_yield = 0;
        tokio::task::yield_now().await;
    }
    burst.finish(sink).await?;
    sink.flush().await
}

/// Room for this many frames is made at once for a burst held for packing (a burst of a few
/// frames then grows its list not at all).
const HELD: usize = 8;

/// One burst's frames on their way to the sink: fed one by one, or held and packed into batch
/// frames at the end.
struct Burst<'a> {
    len: usize,
    /// `Some` when the client takes batch frames: the frames held, and where batches are counted.
    held: Option<(Vec<Bytes>, &'a Metrics)>,
}

impl<'a> Burst<'a> {
    fn new(batch: Option<&'a Arc<Metrics>>) -> Self {
        Self {
            len: 0,
            held: batch.map(|metrics| (Vec::with_capacity(HELD), metrics.as_ref())),
        }
    }

    async fn write(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        frame: Bytes,
    ) -> Result<(), axum::Error> {
        self.len += 1;
        match &mut self.held {
            Some((held, _)) => {
                held.push(frame);
                Ok(())
            }
            None => sink.feed(Message::Binary(frame)).await,
        }
    }

    async fn finish(self, sink: &mut SplitSink<WebSocket, Message>) -> Result<(), axum::Error> {
        let Some((held, metrics)) = self.held else {
            return Ok(());
        };
        let packed = arqon_proto::batch::pack(&held);
        add(&metrics.batch_frames, packed.batches);
        add(&metrics.batched_envelopes, packed.batched);
        for message in packed.messages {
            sink.feed(Message::Binary(message)).await?;
        }
        Ok(())
    }
}
