//! A small connection pool: reuse, idle timeout, health check, and
//! reconnection when the server has closed an idle connection.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use smtp_sansio::{Auth, Envelope, SendReport};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::Client;
use crate::{Error, Options, SendError};

type AuthFactory = Arc<dyn Fn() -> Box<dyn Auth + Send> + Send + Sync>;

/// Settings of a [`Pool`].
#[derive(Clone)]
#[non_exhaustive]
pub struct PoolOptions {
    /// How each connection is opened and driven (timeouts, TLS, STARTTLS
    /// policy, EHLO name, ...).
    pub connection: Options,
    /// Most connections open at once, idle or busy; more concurrent sends
    /// wait for one. Default 4.
    pub max_connections: usize,
    /// An idle connection older than this is closed instead of reused.
    /// Default 60 s (many servers drop idle clients after 1–5 minutes).
    pub idle_timeout: Duration,
    /// A connection idle for longer than this is checked with NOOP before
    /// reuse. Default 5 s.
    pub check_after: Duration,
    /// How long that NOOP may take. Default 10 s.
    pub check_timeout: Duration,
    /// Connect with implicit TLS (RFC 8314, port 465) instead of plaintext
    /// plus STARTTLS. Default off.
    pub implicit_tls: bool,
    auth: Option<AuthFactory>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            connection: Options::default(),
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
            check_after: Duration::from_secs(5),
            check_timeout: Duration::from_secs(10),
            implicit_tls: false,
            auth: None,
        }
    }
}

impl fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolOptions")
            .field("connection", &self.connection)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("check_after", &self.check_after)
            .field("check_timeout", &self.check_timeout)
            .field("implicit_tls", &self.implicit_tls)
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

impl PoolOptions {
    /// Authenticates every new connection with a clone of `mechanism`
    /// (after STARTTLS, when the policy upgrades).
    pub fn with_auth<A: Auth + Clone + Send + Sync + 'static>(mut self, mechanism: A) -> Self {
        self.auth = Some(Arc::new(move || Box::new(mechanism.clone())));
        self
    }
}

/// A pool of connections to one server, for sending from many tasks at
/// once.
///
/// [`send`](Self::send) borrows an idle connection (or opens one: connect,
/// EHLO, STARTTLS under [`Config::tls_policy`](smtp_sansio::Config), AUTH if configured), sends
/// the message, and puts the connection back. Cloning the pool is cheap and
/// shares it.
///
/// Before an idle connection is reused:
/// - it is closed if it was idle longer than [`PoolOptions::idle_timeout`];
/// - anything the server sent while it was idle (a `421` timeout notice, end
///   of stream) is handed to the core, and the connection is dropped if the
///   core says the session is over (no round trip needed);
/// - if it was idle longer than [`PoolOptions::check_after`], a NOOP must
///   succeed within [`PoolOptions::check_timeout`].
///
/// And if a reused connection turns out to have been closed by the server
/// (end of stream, a `421`, a reset) before any of the message's body may
/// have reached the server, the message goes again on another connection.
/// Nothing is retried once a body byte may have gone out (after a `354`, or
/// once a BDAT chunk was written, even pipelined before any reply), so a
/// message is never delivered twice by the pool; a connection opened for
/// this message is never retried either.
///
/// Idle connections are closed without QUIT when dropped; call
/// [`close`](Self::close) to say QUIT to each.
///
/// ```no_run
/// use smtp_tokio::{Envelope, PlainAuth, Pool, PoolOptions};
///
/// # async fn f() -> Result<(), smtp_tokio::Error> {
/// let mut options = PoolOptions::default()
///     .with_auth(PlainAuth::new("", "user", "password", "mail.example.com"));
/// options.max_connections = 8;
/// let pool = Pool::new("mail.example.com:587", options);
/// let envelope = Envelope::new("a@example.com", &["b@example.com"])?;
/// let mut tasks = Vec::new();
/// for _ in 0..100 {
///     let (pool, envelope) = (pool.clone(), envelope.clone());
///     tasks.push(tokio::spawn(async move {
///         pool.send(&envelope, b"Subject: hi\r\n\r\nHello.\r\n").await
///     }));
/// }
/// for task in tasks {
///     task.await.expect("task")?;
/// }
/// pool.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    options: PoolOptions,
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection in use; with `idle` never holding more
    /// than what was released, the total stays within `max_connections`.
    slots: Semaphore,
    /// Connections opened so far (a reconnect counts too).
    opened: AtomicUsize,
}

struct Idle {
    client: Client,
    since: Instant,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.inner.addr)
            .field("idle", &self.idle_connections())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Pool {
    /// A pool for the server at `addr` (`host:port`). No connection is
    /// opened until the first send.
    pub fn new(addr: impl Into<String>, options: PoolOptions) -> Self {
        let slots = Semaphore::new(options.max_connections.max(1));
        Self {
            inner: Arc::new(Inner {
                addr: addr.into(),
                options,
                idle: Mutex::new(Vec::new()),
                slots,
                opened: AtomicUsize::new(0),
            }),
        }
    }

    /// Sends one message (see [`Client::send`]) on a pooled connection. The
    /// message is a byte slice, not a stream, so that it can go again on a
    /// fresh connection if the reused one turns out to be closed.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<SendReport, SendError> {
        let _slot = self.inner.slots.acquire().await.map_err(|_| {
            SendError::not_sent(Error::Smtp(smtp_sansio::UsageError::SessionClosed.into()))
        })?;
        loop {
            let (mut client, reused) = match self.checkout().await {
                Some(client) => (client, true),
                None => (self.open().await.map_err(SendError::not_sent)?, false),
            };
            match client.send(envelope, message).await {
                Ok(report) => {
                    self.checkin(client);
                    return Ok(report);
                }
                Err(f) if reused && !f.body_sent && f.error.is_connection_lost() => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(
                        target: "smtp::pool",
                        "reused connection was closed by the server ({}); retrying",
                        f.error
                    );
                }
                Err(f) => {
                    self.checkin(client);
                    return Err(f);
                }
            }
        }
    }

    /// How many connections wait idle.
    pub fn idle_connections(&self) -> usize {
        self.lock().len()
    }

    /// How many connections the pool has opened so far, reconnections
    /// included: a steady count while sending means connections are reused.
    pub fn connections_opened(&self) -> usize {
        self.inner.opened.load(Ordering::Relaxed)
    }

    /// Says QUIT on every idle connection and closes it. Connections in use
    /// are not affected; they return to the pool when their send ends.
    pub async fn close(&self) {
        let idle: Vec<Idle> = self.lock().drain(..).collect();
        for entry in idle {
            let _ = entry.client.quit().await;
        }
    }

    /// An idle connection that passed the checks, most recently used first.
    async fn checkout(&self) -> Option<Client> {
        let options = &self.inner.options;
        loop {
            let entry = self.lock().pop()?;
            let idle_for = entry.since.elapsed();
            if idle_for >= options.idle_timeout {
                continue;
            }
            let mut client = entry.client;
            if !client.check_idle().await {
                continue;
            }
            if idle_for >= options.check_after {
                // A timeout drops the NOOP mid-way, which breaks the client:
                // it is discarded either way.
                match tokio::time::timeout(options.check_timeout, client.noop()).await {
                    Ok(Ok(())) => {}
                    _ => continue,
                }
            }
            return Some(client);
        }
    }

    /// Puts a connection back if it is still usable, and drops the idle
    /// connections that expired.
    fn checkin(&self, client: Client) {
        let timeout = self.inner.options.idle_timeout;
        let expired: Vec<Idle>;
        {
            let mut idle = self.lock();
            let (keep, old): (Vec<Idle>, Vec<Idle>) =
                idle.drain(..).partition(|e| e.since.elapsed() < timeout);
            *idle = keep;
            expired = old;
            if client.is_reusable() {
                idle.push(Idle {
                    client,
                    since: Instant::now(),
                });
            }
        }
        drop(expired);
    }

    /// Opens a connection the way `send_mail` does.
    async fn open(&self) -> Result<Client, Error> {
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
        let options = &self.inner.options;
        let conn = options.connection.clone();
        let mut client = if options.implicit_tls {
            Client::connect_tls_with(&self.inner.addr, conn).await?
        } else {
            Client::connect_with(&self.inner.addr, conn).await?
        };
        let mut mechanism = options.auth.as_ref().map(|factory| factory());
        client.establish(mechanism.as_deref_mut()).await?;
        Ok(client)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // A panic while holding the lock cannot leave the list inconsistent
        // (every operation is a push, pop or drain), so poisoning is ignored.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
