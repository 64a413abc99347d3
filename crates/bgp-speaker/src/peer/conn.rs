//! One transport connection of a peer and the session running over it: the reader task
//! (bytes in), the writer task (bytes out) and the bounded channels linking them to the
//! peer task (see the parent module for how backpressure flows through them).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bgp_proto::session::Session;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Buffers queued to a writer task.
const WRITE_QUEUE: usize = 4;
/// Reader→peer-task channel depth.
pub(super) const IO_QUEUE: usize = 8;
/// How long a closing connection may take to write its last bytes (the NOTIFICATION).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Events from reader, writer and connect tasks.
#[derive(Debug)]
pub(super) enum Io {
    Data(u64, Bytes),
    Closed(u64, Option<String>),
    Connected(u64, TcpStream),
    ConnectFailed(u64, String),
}

/// One transport connection and the session running over it.
pub(super) struct Conn {
    pub(super) id: u64,
    /// We opened this connection (for collision resolution).
    pub(super) outbound: bool,
    pub(super) session: Session,
    pub(super) writer: Option<mpsc::Sender<Bytes>>,
    pub(super) reader: Option<JoinHandle<()>>,
    pub(super) writer_task: Option<JoinHandle<()>>,
    pub(super) connecting: Option<JoinHandle<()>>,
    pub(super) local: Option<SocketAddr>,
    pub(super) remote: Option<SocketAddr>,
    /// This session reported Established to the RIB.
    pub(super) up: bool,
    /// A new connection of a graceful-restart peer that replaces the Established session
    /// once it got a valid OPEN (incoming.rs).
    pub(super) replaces_established: bool,
}

impl Drop for Conn {
    /// A dropped connection stops reading and connecting; a writer still running is
    /// finishing its last bytes (bounded by [`FLUSH_TIMEOUT`]) and ends by itself.
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
    }
}

impl Conn {
    pub(super) fn new(session: Session) -> Conn {
        Conn {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            outbound: false,
            session,
            writer: None,
            reader: None,
            writer_task: None,
            connecting: None,
            local: None,
            remote: None,
            up: false,
            replaces_established: false,
        }
    }

    pub(super) fn has_transport(&self) -> bool {
        self.writer.is_some()
    }

    /// Hands the stream to reader and writer tasks.
    pub(super) fn attach(&mut self, stream: TcpStream, outbound: bool, io: &mpsc::Sender<Io>) {
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        self.id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        self.outbound = outbound;
        self.local = stream.local_addr().ok();
        self.remote = stream.peer_addr().ok();
        let (mut rd, mut wr) = stream.into_split();
        let id = self.id;
        let tx = io.clone();
        self.reader = Some(tokio::spawn(async move {
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
        }));
        let (wtx, mut wrx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let tx = io.clone();
        self.writer_task = Some(tokio::spawn(async move {
            while let Some(b) = wrx.recv().await {
                if let Err(e) = wr.write_all(&b).await {
                    let _ = tx.send(Io::Closed(id, Some(e.to_string()))).await;
                    return;
                }
            }
            let _ = wr.shutdown().await;
        }));
        self.writer = Some(wtx);
    }

    /// Moves what the session wants written to the writer while it has room.
    pub(super) fn flush(&mut self) {
        let Some(w) = &self.writer else { return };
        while self.session.queued_bytes() > 0 {
            match w.try_reserve() {
                Ok(permit) => match self.session.poll_transmit() {
                    Some(b) => permit.send(b),
                    None => break,
                },
                Err(_) => break,
            }
        }
    }

    /// Closes the transport after writing what is queued (best effort, bounded). Returns
    /// the task finishing the write, to be awaited before the process exits.
    #[must_use]
    pub(super) fn close(&mut self) -> Option<JoinHandle<()>> {
        self.flush();
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        // Dropping the sender lets the writer finish its queue, then shut down.
        self.writer = None;
        self.local = None;
        self.remote = None;
        self.writer_task.take().map(|w| {
            tokio::spawn(async move {
                let abort = w.abort_handle();
                if tokio::time::timeout(FLUSH_TIMEOUT, w).await.is_err() {
                    abort.abort();
                }
            })
        })
    }

    /// Waits until the writer can take more bytes (only while bytes are pending).
    pub(super) async fn writable(&self) -> Option<mpsc::OwnedPermit<Bytes>> {
        match &self.writer {
            Some(w) if self.session.queued_bytes() > 0 => w.clone().reserve_owned().await.ok(),
            _ => std::future::pending().await,
        }
    }
}
