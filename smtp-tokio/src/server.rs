//! Serving SMTP on tokio: the core's [`Server`] session over tokio sockets
//! (and tokio-rustls), a task per connection.
//!
//! The application is a [`Handler`] (its methods are called on the
//! connection's task and answer at once) or an [`AsyncHandler`] (they may
//! await: a database lookup for RCPT, a write of the body to storage);
//! either way the session reads nothing more from the client while it
//! waits for the answer.
//!
//! ```
//! use smtp_tokio::server::{Handler, ServerConfig, SmtpServer};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! struct Discard;
//! impl Handler for Discard {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = SmtpServer::bind("127.0.0.1:0", ServerConfig::new("mx.example")).await.unwrap();
//! let addr = server.local_addr().unwrap();
//! let task = tokio::spawn(async move { server.serve_one(&mut Discard).await });
//! let mut conn = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
//! let mut line = String::new();
//! conn.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "220 mx.example ESMTP\r\n");
//! conn.get_mut().write_all(b"QUIT\r\n").await.unwrap();
//! line.clear();
//! conn.read_line(&mut line).await.unwrap();
//! assert_eq!(line, "221 2.0.0 Bye\r\n");
//! task.await.unwrap().unwrap();
//! # }
//! ```

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
pub use smtp_sansio::server::*;
use smtp_sansio::{DriverError, MailParams, Mailbox, RcptParams, ReversePath, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::time::{Instant, timeout_at};

use crate::common::READ_BUFFER;
use crate::server_listener::{TlsOffer, connection_info};

/// An application whose answers may await. Every method has a default, as
/// [`Handler`]'s: accept everything, refuse AUTH, ignore the body. The
/// futures must be `Send`, so connections can run on any worker thread.
///
/// ```
/// use smtp_tokio::server::{AsyncHandler, Response};
/// use smtp_sansio::{Mailbox, RcptParams};
///
/// struct Directory;
/// impl AsyncHandler for Directory {
///     async fn rcpt(&mut self, to: &Mailbox, _: &RcptParams) -> Response {
///         tokio::task::yield_now().await; // look the user up
///         if to.as_str().starts_with("nobody@") {
///             Response::permanent("No such user")
///         } else {
///             Response::accept()
///         }
///     }
/// }
/// ```
pub trait AsyncHandler: Send {
    /// EHLO/HELO/LHLO.
    fn hello(&mut self, _kind: HelloKind, _domain: &str) -> impl Future<Output = Response> + Send {
        std::future::ready(Response::accept())
    }
    /// AUTH's credentials. Default: refused (`535 5.7.8`).
    fn auth(&mut self, credentials: &Credentials) -> impl Future<Output = Response> + Send {
        std::future::ready(Refuse.auth(credentials))
    }
    /// MAIL FROM.
    fn mail(
        &mut self,
        _from: &ReversePath,
        _params: &MailParams,
    ) -> impl Future<Output = Response> + Send {
        std::future::ready(Response::accept())
    }
    /// RCPT TO.
    fn rcpt(
        &mut self,
        _to: &Mailbox,
        _params: &RcptParams,
    ) -> impl Future<Output = Response> + Send {
        std::future::ready(Response::accept())
    }
    /// A piece of the body.
    fn body(&mut self, _chunk: Bytes) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// The message is complete.
    fn message(&mut self, _transaction: &Transaction) -> impl Future<Output = Response> + Send {
        std::future::ready(Response::accept())
    }
    /// LMTP: the message is complete; one response per recipient. Default:
    /// [`message`](Self::message)'s answer for each.
    fn lmtp_message(
        &mut self,
        transaction: &Transaction,
    ) -> impl Future<Output = Vec<Response>> + Send {
        async move {
            let response = self.message(transaction).await;
            vec![response; transaction.recipients.len()]
        }
    }
    /// VRFY.
    fn verify(&mut self, _argument: &str) -> impl Future<Output = Response> + Send {
        std::future::ready(Response::accept())
    }
    /// The transaction was dropped.
    fn reset(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// The message being received was dropped.
    fn aborted(&mut self, _reason: AbortReason) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// TLS is up.
    fn tls_started(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// SCRAM: the stored keys of `username` for `hash`, or `None` for an
    /// unknown user. Default: none.
    #[cfg(feature = "scram")]
    fn scram_credentials(
        &mut self,
        _username: &str,
        _hash: smtp_sansio::ScramHash,
    ) -> impl Future<Output = Option<ScramCredentials>> + Send {
        std::future::ready(None)
    }
}

/// The sync [`Handler`]'s defaults, for [`AsyncHandler`]'s.
struct Refuse;
impl Handler for Refuse {}

/// Answers one event: a [`Handler`] through the core's `dispatch`, or an
/// [`AsyncHandler`].
trait Dispatch: Send {
    fn dispatch(
        &mut self,
        server: &mut Server,
        event: ServerEvent,
    ) -> impl Future<Output = ()> + Send;
}

/// A sync [`Handler`] on the connection's task.
struct Sync<'a, H>(&'a mut H);

impl<H: Handler + Send> Dispatch for Sync<'_, H> {
    async fn dispatch(&mut self, server: &mut Server, event: ServerEvent) {
        server.dispatch(event, self.0);
    }
}

/// An [`AsyncHandler`].
struct Async<'a, H>(&'a mut H);

impl<H: AsyncHandler> Dispatch for Async<'_, H> {
    async fn dispatch(&mut self, server: &mut Server, event: ServerEvent) {
        let h = &mut *self.0;
        let response = match event {
            ServerEvent::Hello { kind, domain } => h.hello(kind, &domain).await,
            ServerEvent::Auth(credentials) => h.auth(&credentials).await,
            ServerEvent::Mail { from, params } => h.mail(&from, &params).await,
            ServerEvent::Rcpt { to, params } => h.rcpt(&to, &params).await,
            ServerEvent::Body(bytes) => return h.body(bytes).await,
            ServerEvent::Message { .. } => {
                let Some(txn) = server.transaction() else {
                    let _ = server.respond(Response::temporary("Error: no transaction"));
                    return;
                };
                if server.config().lmtp {
                    let responses = h.lmtp_message(txn).await;
                    return server.respond_lmtp(&responses);
                }
                h.message(txn).await
            }
            ServerEvent::Verify(argument) => h.verify(&argument).await,
            ServerEvent::Reset => return h.reset().await,
            ServerEvent::Aborted(reason) => return h.aborted(reason).await,
            ServerEvent::TlsStarted => return h.tls_started().await,
            #[cfg(feature = "scram")]
            ServerEvent::ScramLookup {
                mechanism,
                username,
            } => {
                let stored = match mechanism.scram_hash() {
                    Some(hash) => h.scram_credentials(&username, hash).await,
                    None => None,
                };
                let _ = server.respond_scram(stored);
                return;
            }
            // A kind this build does not know: refuse it (for a SCRAM
            // lookup, that is "no such user").
            _ => Response::temporary("Error: not handled"),
        };
        let _ = server.respond(response);
    }
}

/// The listener [`SmtpServer`] holds.
pub(crate) type Listener = TcpListener;

pub use crate::server_listener::SmtpServer;

impl SmtpServer {
    /// Listens on `addr` (use a port of 0 for any free one).
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        Ok(Self::with_listener(TcpListener::bind(addr).await?, config))
    }

    /// Accepts one connection and serves it on this task.
    pub async fn serve_one(
        &self,
        handler: &mut (impl Handler + Send),
    ) -> Result<CloseReason, DriverError> {
        let (stream, _) = self
            .listener
            .accept()
            .await
            .map_err(|e| DriverError::from_io(e, false))?;
        self.serve_stream(stream, handler).await
    }

    /// Serves an accepted connection on this task.
    pub async fn serve_stream(
        &self,
        stream: TcpStream,
        handler: &mut (impl Handler + Send),
    ) -> Result<CloseReason, DriverError> {
        let (config, tls) = (Arc::clone(&self.config), self.tls.clone());
        serve_connection(stream, config, tls, Sync(handler)).await
    }

    /// Serves an accepted connection with an [`AsyncHandler`].
    pub async fn serve_stream_async(
        &self,
        stream: TcpStream,
        handler: &mut impl AsyncHandler,
    ) -> Result<CloseReason, DriverError> {
        let (config, tls) = (Arc::clone(&self.config), self.tls.clone());
        serve_connection(stream, config, tls, Async(handler)).await
    }

    /// [`serve`](Self::serve) with an [`AsyncHandler`] per connection.
    pub async fn serve_async<H, F>(self, make_handler: F) -> io::Result<()>
    where
        H: AsyncHandler + 'static,
        F: Fn(SocketAddr) -> H + Send + std::marker::Sync + 'static,
    {
        self.accept_loop(move |this, stream, peer| {
            let mut handler = make_handler(peer);
            async move {
                let _ = this.serve_stream_async(stream, &mut handler).await;
            }
        })
        .await
    }

    /// Accepts connections until accepting fails, each served on its own
    /// task with a handler from `make_handler` (given the peer's address).
    pub async fn serve<H, F>(self, make_handler: F) -> io::Result<()>
    where
        H: Handler + Send + 'static,
        F: Fn(SocketAddr) -> H + Send + std::marker::Sync + 'static,
    {
        self.accept_loop(move |this, stream, peer| {
            let mut handler = make_handler(peer);
            async move {
                let _ = this.serve_stream(stream, &mut handler).await;
            }
        })
        .await
    }

    /// Accepts until accepting fails, spawning `serve` for each connection.
    async fn accept_loop<S, Fut>(self, serve: S) -> io::Result<()>
    where
        S: Fn(Arc<Self>, TcpStream, SocketAddr) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let this = Arc::new(self);
        loop {
            let (stream, peer) = match this.listener.accept().await {
                Ok(accepted) => accepted,
                // A peer that gave up while queued is no reason to stop.
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            tokio::spawn(serve(Arc::clone(&this), stream, peer));
        }
    }
}

/// The connection, plaintext or TLS.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Only while switching to TLS.
    #[cfg(feature = "tls")]
    Gone,
}

impl Conn {
    fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf).await,
            #[cfg(feature = "tls")]
            Self::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(bytes).await,
            #[cfg(feature = "tls")]
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            #[cfg(feature = "tls")]
            Self::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Self::Plain(s) => s.shutdown().await,
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.shutdown().await,
            #[cfg(feature = "tls")]
            Self::Gone => Ok(()),
        };
    }
}

fn io_err(e: io::Error, tls: bool) -> DriverError {
    DriverError::from_io(e, tls)
}

struct Clock(Instant);

impl Clock {
    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.0.elapsed())
    }
    fn at(&self, deadline: Timestamp) -> Instant {
        // A deadline too far to represent is as good as none.
        self.0
            .checked_add(deadline.as_duration())
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(86_400 * 365))
    }
}

/// Serves one connection with `handler`: the core's run loop.
async fn serve_connection(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    tls: TlsOffer,
    mut handler: impl Dispatch,
) -> Result<CloseReason, DriverError> {
    let _ = stream.set_nodelay(true);
    #[cfg(not(feature = "tls"))]
    let _ = &tls;
    let clock = Clock(Instant::now());
    #[allow(unused_mut)]
    let mut conn = Conn::Plain(stream);
    #[allow(unused_mut)]
    let mut info = connection_info();
    #[cfg(feature = "tls")]
    if let TlsOffer::Implicit(acceptor) = &tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(acceptor));
        let deadline = clock.now().saturating_add(config.timeouts.tls_handshake);
        conn = handshake(conn, &acceptor, clock.at(deadline)).await?;
        info = info.with_tls(true);
    }
    let mut server = Server::new(config, info, clock.now());
    let mut buf = vec![0u8; READ_BUFFER];
    let result = loop {
        match server.poll_output(clock.now()) {
            ServerOutput::Transmit { bytes, deadline } => {
                match timeout_at(clock.at(deadline), conn.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        server.handle_transport_error(clock.now());
                        break Err(io_err(e, conn.is_tls()));
                    }
                    Err(_) => server.handle_timeout(deadline),
                }
            }
            ServerOutput::Event(event) => handler.dispatch(&mut server, event).await,
            ServerOutput::StartTls { deadline } => {
                #[cfg(feature = "tls")]
                if let (TlsOffer::StartTls(tls), Conn::Plain(_)) = (&tls, &conn) {
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                    let plain = std::mem::replace(&mut conn, Conn::Gone);
                    match handshake(plain, &acceptor, clock.at(deadline)).await {
                        Ok(upgraded) => {
                            conn = upgraded;
                            server.handle_tls_established(clock.now());
                            continue;
                        }
                        Err(e) => {
                            server.handle_transport_error(clock.now());
                            break Err(e);
                        }
                    }
                }
                let _ = deadline;
                server.handle_transport_error(clock.now());
                break Err(io_err(ErrorKind::Unsupported.into(), true));
            }
            ServerOutput::Closed => {
                break Ok(server.close_reason().unwrap_or(CloseReason::Shutdown));
            }
            ServerOutput::Wait(deadline) => {
                match timeout_at(clock.at(deadline), conn.read(&mut buf)).await {
                    Ok(Ok(0)) => server.handle_eof(clock.now()),
                    Ok(Ok(n)) => server.handle_input(clock.now(), &buf[..n]),
                    Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                    Ok(Err(e)) => {
                        server.handle_transport_error(clock.now());
                        break Err(io_err(e, conn.is_tls()));
                    }
                    Err(_) => server.handle_timeout(clock.now()),
                }
            }
            // dispatch answers every request; nothing else can come.
            _ => server.shutdown(),
        }
    };
    while let ServerOutput::Event(event) = server.poll_output(clock.now()) {
        handler.dispatch(&mut server, event).await;
    }
    conn.shutdown().await;
    result
}

/// The server's TLS handshake, bounded by `deadline`.
#[cfg(feature = "tls")]
async fn handshake(
    conn: Conn,
    acceptor: &tokio_rustls::TlsAcceptor,
    deadline: Instant,
) -> Result<Conn, DriverError> {
    let Conn::Plain(tcp) = conn else {
        return Err(io_err(ErrorKind::Unsupported.into(), true));
    };
    match timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(Conn::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(io_err(e, true)),
        Err(_) => Err(io_err(ErrorKind::TimedOut.into(), true)),
    }
}
