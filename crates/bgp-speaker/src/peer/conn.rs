//! The sockets of one peer connection: a reader task (bytes in), a writer task (bytes
//! out), or the task opening it; all in the peer task's [`JoinSet`]. The peer driver
//! names the connection by [`ConnId`]; this is what the id stands for on the wire.

use std::time::Duration;

use bgp_node::ConnId;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Buffers queued to a writer task.
const WRITE_QUEUE: usize = 4;
/// Reader→peer-task channel depth.
pub(super) const IO_QUEUE: usize = 8;
/// How long a closing connection may take to write its last bytes (the NOTIFICATION).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Events from reader, writer and connect tasks.
#[derive(Debug)]
pub(super) enum Io {
    Data(ConnId, Bytes),
    Closed(ConnId, Option<String>),
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId, String),
}

/// One connection's tasks.
#[derive(Debug)]
pub(super) struct IoConn {
    pub(super) id: ConnId,
    writer: Option<mpsc::Sender<Bytes>>,
    reader: Option<AbortHandle>,
    connect: Option<AbortHandle>,
    /// Dropped when the connection closes: from then on the writer has
    /// [`FLUSH_TIMEOUT`] to finish.
    closing: Option<oneshot::Sender<()>>,
}

impl Drop for IoConn {
    /// A dropped connection stops reading and connecting; a writer still running is
    /// finishing its last bytes (bounded by [`FLUSH_TIMEOUT`]) and ends by itself.
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if let Some(c) = self.connect.take() {
            c.abort();
        }
    }
}

impl IoConn {
    /// A connection attempt under way (`connect` reports to the peer task).
    pub(super) fn connecting(id: ConnId, connect: AbortHandle) -> IoConn {
        IoConn {
            id,
            writer: None,
            reader: None,
            connect: Some(connect),
            closing: None,
        }
    }

    /// Hands an established stream to reader and writer tasks.
    pub(super) fn attach(
        id: ConnId,
        stream: TcpStream,
        io: &mpsc::Sender<Io>,
        tasks: &mut JoinSet<()>,
    ) -> IoConn {
        let (mut rd, mut wr) = stream.into_split();
        let tx = io.clone();
        let reader = tasks.spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) => {
                        let _ = tx.send(Io::Closed(id, None)).await;
                        return;
                    }
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                        if tx.send(Io::Data(id, chunk)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Io::Closed(id, Some(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        let (wtx, mut wrx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let (closing, closed) = oneshot::channel::<()>();
        let tx = io.clone();
        tasks.spawn(async move {
            let write = async {
                while let Some(b) = wrx.recv().await {
                    if let Err(e) = wr.write_all(&b).await {
                        let _ = tx.send(Io::Closed(id, Some(e.to_string()))).await;
                        return;
                    }
                }
                let _ = wr.shutdown().await;
            };
            let deadline = async {
                let _ = closed.await;
                tokio::time::sleep(FLUSH_TIMEOUT).await;
            };
            tokio::select! {
                _ = write => {}
                _ = deadline => {}
            }
        });
        IoConn {
            id,
            writer: Some(wtx),
            reader: Some(reader),
            connect: None,
            closing: Some(closing),
        }
    }

    /// The writer, while the connection is up.
    pub(super) fn writer(&self) -> Option<&mpsc::Sender<Bytes>> {
        self.writer.as_ref()
    }

    /// Closes the connection after `last` (best effort: what fits in the writer's queue)
    /// and what was queued before; an attempt under way is abandoned.
    pub(super) fn close(mut self, last: Vec<Bytes>) {
        if let Some(w) = &self.writer {
            for b in last {
                if w.try_send(b).is_err() {
                    break;
                }
            }
        }
        // Dropping the sender lets the writer finish its queue, then shut down.
        self.writer = None;
        self.closing = None;
    }
}
