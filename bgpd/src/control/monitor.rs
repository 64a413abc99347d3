//! `monitor`: the control socket's one streaming request. After the request line the
//! daemon sends one `event` answer per line as things happen ([`Speaker::events`]: peer
//! state changes, routes received, best-path changes) until the client closes.
//!
//! Bounded per client, and never a brake on the daemon: the events of a connection go
//! through a queue of [`QUEUE`] lines to its writer. When the client reads too slowly
//! and the queue is full, events are dropped and counted, and the client gets one
//! `lagged` line saying how many before the next event that fits (the speaker's own
//! channels do the same when this connection falls behind them). A client that reads
//! nothing at all is disconnected once a write made no progress for the control socket's
//! `timeout` ([`ControlLimits::write`]), as any other answer. Nothing else waits on a
//! client: the speaker publishes to broadcast channels that never block.

use bgp_control::{Event, Response};
use bgp_speaker::config::ControlLimits;
use bgp_speaker::{EventError, Speaker, SpeakerEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::answer;
use super::limits;

/// Lines queued for one client beyond what its socket buffer holds.
pub const QUEUE: usize = 1024;

/// Streams events to the client on `wr` until it closes `rd` (or sends anything more:
/// a monitoring connection takes no further requests), a write times out, or the speaker
/// stops. `peer`: only that peer's state changes and routes.
pub async fn stream<R, W>(
    rd: &mut R,
    wr: &mut W,
    speaker: &Speaker,
    peer: Option<String>,
    limits: ControlLimits,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Subscribed before the answer, so nothing after it is missed.
    let mut events = speaker.events();
    if let Some(p) = &peer {
        if let Err(e) = speaker.peer(p).await {
            let resp = Response::error(e.to_string());
            return limits::write_all(wr, &super::server::answer(&resp), limits.write).await;
        }
    }
    let started = Response::ok(bgp_control::Reply::Done {
        message: match &peer {
            Some(p) => format!("monitoring peer {p}"),
            None => "monitoring".into(),
        },
    });
    limits::write_all(wr, &super::server::answer(&started), limits.write).await?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let writer = async {
        while let Some(line) = rx.recv().await {
            limits::write_all(wr, &line, limits.write).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let collector = async {
        let mut lost = 0u64;
        let mut buf = [0u8; 256];
        loop {
            let ev = tokio::select! {
                n = rd.read(&mut buf) => {
                    // The client closed (or broke the protocol): done.
                    let _ = n;
                    return;
                }
                ev = events.recv() => ev,
            };
            let line = match ev {
                Ok(e) if wanted(&e, peer.as_deref()) => answer::event(&e),
                Ok(_) => continue,
                Err(EventError::Lagged(n)) => {
                    lost += n;
                    continue;
                }
                Err(EventError::Closed) => return,
            };
            if lost > 0 {
                let marker = answer::stamped(Event::Lagged { lost });
                match tx.try_send(line_of(marker)) {
                    Ok(()) => lost = 0,
                    Err(TrySendError::Full(_)) => {
                        lost += 1;
                        continue;
                    }
                    Err(TrySendError::Closed(_)) => return,
                }
            }
            match tx.try_send(line_of(line)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => lost += 1,
                Err(TrySendError::Closed(_)) => return,
            }
        }
    };
    tokio::select! {
        r = writer => r,
        () = collector => Ok(()),
    }
}

/// Whether an event belongs to the stream of `peer` (all of them without one).
fn wanted(e: &SpeakerEvent, peer: Option<&str>) -> bool {
    let Some(want) = peer else {
        return true;
    };
    match e {
        SpeakerEvent::PeerState { peer, .. }
        | SpeakerEvent::Announced { peer, .. }
        | SpeakerEvent::Withdrawn { peer, .. } => peer == want,
        SpeakerEvent::Best(_) => false,
    }
}

fn line_of(e: bgp_control::MonitorEvent) -> Vec<u8> {
    super::server::answer(&Response::ok(bgp_control::Reply::Event(Box::new(e))))
}
