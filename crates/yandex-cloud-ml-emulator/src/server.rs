//! Accepting connections without being at the mercy of clients: a connection limit below the
//! process's descriptor limit (connections over it are closed at once), a deadline for a new
//! connection to start talking (slowloris), an accept loop that backs off when the process runs
//! out of descriptors instead of spinning, and TCP_NODELAY for small streamed chunks. Binding
//! names the address that could not be had.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

/// Binds `addr` for `what` (`the API`, `the control API`); a failure names the address.
pub(crate) async fn bind(addr: &str, what: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| cannot_listen(addr, what, e))
}

/// `e`, a failure to listen on `addr`, with the address named and, when it is taken, what to do.
pub(crate) fn cannot_listen(addr: &str, what: &str, e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            "; another process (another emulator?) listens there: stop it, or choose another port (0 picks a free one)"
        }
        _ => "",
    };
    io::Error::new(e.kind(), format!("cannot listen on {addr} for {what}: {e}{hint}"))
}
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How many bytes a new connection must send before the handshake deadline: the HTTP/2
/// connection preface (or, with TLS, the start of the client hello).
const FIRST_BYTES: usize = 24;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
}

/// The configured connection limit, kept below the open-file limit of the process so the
/// emulator itself always has descriptors left (for its control port, files, the next accept).
pub(crate) fn effective_max_connections(configured: usize) -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we pass and has no other effect.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            let available = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return configured.min(available.saturating_sub(64).max(16) * 3 / 4).max(1);
        }
    }
    configured.max(1)
}

/// Accepted connections, each holding a permit of the connection limit.
pub(crate) fn incoming(listener: TcpListener, limits: Limits) -> impl Stream<Item = Result<Guarded, io::Error>> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    futures_util::stream::unfold(
        (listener, permits, Duration::ZERO),
        move |(listener, permits, mut backoff)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        backoff = Duration::ZERO;
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            tracing::warn!(%peer, limit = limits.max_connections, "connection limit reached; closing the new connection");
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let guarded = Guarded::new(stream, permit, limits.handshake_timeout);
                        return Some((Ok(guarded), (listener, permits, backoff)));
                    }
                    Err(e) => {
                        // Out of descriptors or memory: wait for some to free up instead of spinning.
                        backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                        tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
        },
    )
}

/// A connection that must send its first bytes in time and frees its permit when closed.
pub(crate) struct Guarded {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Armed until the first bytes arrived.
    handshake: Option<(Pin<Box<Sleep>>, usize)>,
}

impl Guarded {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, timeout: Duration) -> Guarded {
        let handshake = Some((Box::pin(tokio::time::sleep_until(Instant::now() + timeout)), 0));
        Guarded { stream, _permit: permit, handshake }
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Some((deadline, seen)) = this.handshake.as_mut() {
            if let Poll::Ready(Ok(())) = &result {
                *seen += buf.filled().len() - before;
                if *seen >= FIRST_BYTES {
                    this.handshake = None;
                    return result;
                }
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing in time after connecting",
                )));
            }
        }
        result
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
