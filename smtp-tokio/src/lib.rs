//! An async SMTP client on tokio and tokio-rustls, with Go's `net/smtp` API,
//! driven by the sans-IO [`smtp_sansio`] core.
//!
//! The API is `smtp-blocking`'s, method for method: switching runtimes means
//! changing the crate name and adding `.await`. Every method queues an
//! operation in the core, drives the connection until the core reports its
//! outcome, and returns it; no protocol decision is made here (the two
//! adapters do not depend on each other: they share the core's types).
//! Every future is `Send`, so the client runs on the multi-threaded runtime.
//!
//! | Go `net/smtp` | here |
//! |---|---|
//! | `Dial(addr)` | [`Client::connect`] (and [`Client::connect_tls`] for port 465) |
//! | `NewClient(conn, host)` | [`Client::new`] over any `AsyncRead + AsyncWrite + Unpin + Send` stream |
//! | `c.Hello(name)` | [`Client::hello`] |
//! | `c.StartTLS(config)` | [`Client::starttls`] |
//! | `c.TLSConnectionState()` | [`Client::tls_connection_state`] |
//! | `c.Auth(a)` | [`Client::auth`] with [`PlainAuth`], [`LoginAuth`], [`CramMd5Auth`], [`XOAuth2`], [`OAuthBearer`] or your own [`Auth`] |
//! | `c.Mail(from)`, `c.Rcpt(to)` | [`Client::mail`], [`Client::rcpt`] (and `_with` forms taking ESMTP options) |
//! | `c.Data()` | [`Client::data`] → [`DataWriter`] (`AsyncWrite`), [`DataWriter::finish`] |
//! | `c.Verify(addr)`, `c.Reset()`, `c.Noop()` | [`Client::verify`], [`Client::reset`], [`Client::noop`] |
//! | `c.Extension(name)` | [`Client::extension`] |
//! | `c.Quit()`, `c.Close()` | [`Client::quit`], [`Client::close`] |
//! | `SendMail(addr, a, from, to, msg)` | [`send_mail`] |
//! | — | [`send_mail_url`] and [`Client::connect_url`]: `smtp://`, `smtps://` (implicit TLS), `smtp+starttls://` URLs with credentials |
//!
//! # Three `Client`s
//!
//! [`smtp_sansio::Client`] is the sans-IO session: it holds the protocol
//! state, takes bytes and the time, and says what to write; it never
//! touches a socket. `smtp_blocking::Client` owns a blocking stream and
//! drives that session, one call per SMTP step. [`Client`] (this crate's)
//! is the same API, `async`, on tokio. Pick one of the last two to send
//! mail; use the first to embed SMTP in your own event loop.
//!
//! # Cargo features
//!
//! | feature | default | what it gives |
//! |---|---|---|
//! | `ring` | on | TLS (tokio-rustls) with rustls' ring crypto provider |
//! | `aws-lc-rs` | off | TLS with the aws-lc-rs provider instead (chosen when both are on; needs a C compiler) |
//! | `webpki-roots` | on | the Mozilla roots compiled in ([`TlsRoots::Default`](smtp_sansio::TlsRoots)) |
//! | `native-roots` | off | the OS trust store ([`TlsRoots::Native`](smtp_sansio::TlsRoots); the default store when `webpki-roots` is off) |
//! | `tls` | with any of the four above | rustls itself; a provider may then be installed as the process default |
//! | `tracing` | on | transcript lines (and the pool's notes) to `tracing` |
//! | `scram`, `scram-sha1` | on, off | SCRAM-SHA-256 (and SHA-1) with OS nonces |
//!
//! tokio itself is used with `net`, `io-util`, `time` and `sync` only: your
//! application picks the runtime flavour (`rt-multi-thread`, `macros`).
//! With `default-features = false` and no TLS feature there is no rustls
//! at all: plaintext connections and your own stream still work, and asking
//! for TLS is
//! [`UsageError::TlsUnavailable`](smtp_sansio::UsageError::TlsUnavailable).
//!
//! [`Options`] says how a connection is protected ([`TlsMode`]: implicit
//! TLS, or STARTTLS required, opportunistic or disabled) and which roots
//! are trusted ([`Options::trust_pem_file`](smtp_sansio::DriverOptions::trust_pem_file)
//! for a private CA, no rustls code needed).
//!
//! Beyond Go: [`Client::send`] (one whole transaction, pipelined), BDAT
//! ([`Client::bdat`]), LMTP, transcripts, and a small connection [`Pool`]
//! for sending concurrently from many tasks.
//!
//! # Coming from `smtp-blocking`
//!
//! Same types, same names, same errors; every call that talks to the server
//! is `async`:
//!
//! | `smtp_blocking` | `smtp_tokio` |
//! |---|---|
//! | `Client::connect(addr)?`, `connect_with`, `connect_tls`, `connect_tls_with` | the same, `.await?` |
//! | `Client::new(stream, host)?`, `with_options(stream, host, options, tls)?` over `Read + Write` | the same, `.await?`, over `AsyncRead + AsyncWrite + Unpin + Send` |
//! | `hello`, `starttls`, `auth`, `mail`, `mail_with`, `rcpt`, `rcpt_with`, `verify`, `reset`, `noop`, `quit`, `send` | the same, `.await` |
//! | `data()?` / `bdat()?` → `DataWriter: io::Write` | `data().await?` / `bdat().await?` → [`DataWriter`]: `AsyncWrite` |
//! | `DataWriter::write_body`, `copy_from(impl Read)`, `finish()` | `write_body(..).await`, `copy_from(impl AsyncRead).await`, `finish().await` |
//! | `extension(name)`, `close()` | `extension(name).await`, `close().await` (these may do I/O) |
//! | `tls_connection_state`, `capabilities`, `session`, `set_transcript` | the same (no I/O) |
//! | `send_mail(addr, Option<&mut dyn Auth>, ..)`, `send_mail_with` | the same with `Option<&mut (dyn Auth + Send)>`, `.await` |
//! | `send_mail_url(url, ..)`, `send_mail_url_with`, `Client::connect_url` | the same, `.await` |
//! | `Options`, `Error`, `SendError` (the core's `DriverOptions`, `DriverError`), `TlsConfig`, `TlsConnectionState`, `default_tls_config`, `tls_config_with_roots`, re-exports | the same |
//! | — | [`Pool`], [`PoolOptions`] |
//!
//! # Timeouts and cancellation
//!
//! Every wait has a limit: the core keeps the deadlines (each reply with
//! the RFC 5321 §4.5.3.2 timeout of its stage, each write, the TLS
//! handshake; see [`Timeouts`]) and this adapter sleeps until them with
//! `tokio::time`; connect has its own. A future dropped before it completes
//! (by `tokio::time::timeout`, `select!`, an aborted task) ends the session:
//! later calls return [`smtp_sansio::Error::Abandoned`] instead of going on
//! out of step with the server.
//!
//! # Example
//!
//! ```no_run
//! use smtp_tokio::{send_mail, PlainAuth};
//!
//! # async fn f() -> Result<(), smtp_tokio::Error> {
//! let message = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n";
//! let mut auth = PlainAuth::new("", "user", "password", "mail.example.com");
//! let report = send_mail(
//!     "mail.example.com:587",
//!     Some(&mut auth),
//!     "a@example.com",
//!     &["b@example.com"],
//!     &message[..],
//! )
//! .await?;
//! println!("queued: {}", report.reply);
//! # Ok(()) }
//! ```
//!
//! A session step by step, over an in-memory pipe to a scripted server
//! task:
//!
//! ```
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let (client_end, server_end) = tokio::io::duplex(4096);
//!
//! // The server: a greeting, then one canned reply per command line.
//! let server = tokio::spawn(async move {
//!     let mut server = BufReader::new(server_end);
//!     server.write_all(b"220 mx ready\r\n").await?;
//!     let (mut line, mut in_body, mut body) = (String::new(), false, String::new());
//!     loop {
//!         line.clear();
//!         if server.read_line(&mut line).await? == 0 {
//!             return Ok::<_, std::io::Error>(body);
//!         }
//!         let reply: &[u8] = match line.trim_end() {
//!             "." if in_body => { in_body = false; b"250 queued as 42\r\n" }
//!             text if in_body => { body.push_str(text); body.push('\n'); continue }
//!             text if text.starts_with("EHLO") => b"250-mx\r\n250 8BITMIME\r\n",
//!             "DATA" => { in_body = true; b"354 go ahead\r\n" }
//!             "QUIT" => b"221 bye\r\n",
//!             _ => b"250 ok\r\n", // MAIL, RCPT
//!         };
//!         server.write_all(reply).await?;
//!     }
//! });
//!
//! let mut client = smtp_tokio::Client::new(client_end, "mx").await?;
//! client.hello("client.example").await?;
//! client.mail("a@example.com").await?;
//! client.rcpt("b@example.com").await?;
//! let mut body = client.data().await?;
//! body.write_all(b"Subject: hi\n\n.dot first\n").await?; // tokio's AsyncWriteExt
//! assert_eq!(body.finish().await?.text(), "queued as 42");
//! client.quit().await?;
//!
//! // The line starting with a dot went out dot-stuffed.
//! assert_eq!(server.await??, "Subject: hi\n\n..dot first\n");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod common;
mod data;
mod pool;
#[cfg(feature = "scram")]
mod scram;
pub mod server;
mod server_listener;
mod stream;
#[cfg(feature = "tls")]
mod tls;

use tokio::io::AsyncRead;

pub use client::Client;
pub use common::*;
pub use data::DataWriter;
pub use pool::{Pool, PoolOptions};

/// Why a call failed: the core's verdict ([`Error::Smtp`]: the server's
/// refusal with its reply, a protocol violation, a timeout, the caller's
/// bad input) or the transport's (I/O, TLS, connect). Every later call
/// returns the first fatal one. The same type as `smtp-blocking`'s.
pub type Error = smtp_sansio::DriverError;

/// A failed message: the error, and what each recipient answered before it
/// (see [`smtp_sansio::SendError`]).
pub type SendError = smtp_sansio::SendError<Error>;

/// Settings for [`Client::connect_with`], [`send_mail_with`] and the URL
/// forms: the core's [`Config`] (every protocol setting), the TLS mode, the
/// trusted roots or your own rustls settings, and `TCP_NODELAY`. Built with
/// chainable `with_*` methods; a bad PEM is an error before any connection.
///
/// ```
/// use std::time::Duration;
/// use smtp_tokio::{Options, Timeouts, TlsMode};
///
/// let options = Options::new()
///     .with_timeouts(Timeouts::uniform(Duration::from_secs(20)))
///     .with_tls_mode(TlsMode::Implicit);
/// assert!(options.implicit_tls);
/// ```
pub type Options = smtp_sansio::DriverOptions<TlsConfig>;

/// Go's `SendMail`: connects to `addr`, says EHLO, upgrades with STARTTLS if
/// offered (verifying the certificate for the host part of `addr`),
/// authenticates with `auth` if given, sends the message to every recipient
/// (with PIPELINING when offered) and quits.
///
/// Addresses are checked before connecting: CR, LF and other bytes that
/// could inject commands are refused. `message` is any [`AsyncRead`], such
/// as `&[u8]` or a `tokio::fs::File`; it is streamed, never held whole in
/// memory. Succeeds when at least one recipient accepted the message; the
/// report says which did. On failure the error says what each recipient
/// answered before it (`?` turns it into an [`Error`]).
pub async fn send_mail(
    addr: &str,
    auth: Option<&mut (dyn Auth + Send)>,
    from: &str,
    to: &[&str],
    message: impl AsyncRead + Send,
) -> Result<SendReport, SendError> {
    let envelope = Envelope::new(from, to).map_err(|e| SendError::not_sent(e.into()))?;
    send_mail_with(addr, &Options::default(), auth, &envelope, message).await
}

/// [`send_mail`] with settings and a full [`Envelope`] (ESMTP options such
/// as SIZE, DSN, REQUIRETLS).
pub async fn send_mail_with(
    addr: &str,
    options: &Options,
    auth: Option<&mut (dyn Auth + Send)>,
    envelope: &Envelope,
    message: impl AsyncRead + Send,
) -> Result<SendReport, SendError> {
    let mut client = Client::connect_with(addr, options.clone())
        .await
        .map_err(SendError::not_sent)?;
    client.establish(auth).await.map_err(SendError::not_sent)?;
    finish(client, envelope, message).await
}

/// One call for every submission mode: connects to a server URL in its TLS
/// mode (`smtps://` implicit TLS on 465, `smtp+starttls://` STARTTLS
/// required on 587, `smtp://` on 25 with STARTTLS when offered, required
/// when the URL has credentials, `smtp+insecure://` never TLS; see
/// [`ServerUrl`]), authenticates with the URL's credentials if any, sends
/// the message and quits. See [`Client::connect_url`].
///
/// ```no_run
/// # async fn f() -> Result<(), smtp_tokio::Error> {
/// let message = b"Subject: hi\r\n\r\nHello.\r\n";
/// smtp_tokio::send_mail_url(
///     "smtps://me%40example.com:password@mail.example.com",
///     "me@example.com",
///     &["you@example.com"],
///     &message[..],
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn send_mail_url(
    url: &str,
    from: &str,
    to: &[&str],
    message: impl AsyncRead + Send,
) -> Result<SendReport, SendError> {
    let envelope = Envelope::new(from, to).map_err(|e| SendError::not_sent(e.into()))?;
    send_mail_url_with(url, &Options::default(), &envelope, message).await
}

/// [`send_mail_url`] with settings (trusted roots, timeouts, the named
/// opt-out [`allow_insecure_auth`](smtp_sansio::DriverOptions::allow_insecure_auth))
/// and a full [`Envelope`]. The URL's scheme sets the TLS mode.
pub async fn send_mail_url_with(
    url: &str,
    options: &Options,
    envelope: &Envelope,
    message: impl AsyncRead + Send,
) -> Result<SendReport, SendError> {
    let client = Client::connect_url(url, options.clone())
        .await
        .map_err(SendError::not_sent)?;
    finish(client, envelope, message).await
}

async fn finish(
    mut client: Client,
    envelope: &Envelope,
    message: impl AsyncRead + Send,
) -> Result<SendReport, SendError> {
    let report = client.send(envelope, message).await?;
    // The message is accepted: a failing QUIT must not make a caller send
    // it again.
    let _ = client.quit().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    //! Compile-time checks: every future of the public API is `Send`.

    use super::*;
    use tokio::io::DuplexStream;

    fn assert_send<T: Send>(_: &T) {}

    #[allow(dead_code, clippy::diverging_sub_expression)]
    async fn futures_are_send(
        mut client: Client,
        mut duplex: Client<DuplexStream>,
        pool: Pool,
        envelope: Envelope,
        mut auth: PlainAuth,
    ) {
        assert_send(&Client::connect("x:25"));
        assert_send(&Client::connect_tls("x:25"));
        assert_send(&Client::<DuplexStream>::new(tokio::io::duplex(1).0, "x"));
        assert_send(&client.hello("x"));
        assert_send(&client.starttls(None));
        assert_send(&client.auth(&mut auth));
        assert_send(&client.mail("a@x"));
        assert_send(&client.rcpt("a@x"));
        assert_send(&client.verify("a"));
        assert_send(&client.reset());
        assert_send(&client.noop());
        assert_send(&client.extension("SIZE"));
        assert_send(&client.send(&envelope, &b"m"[..]));
        assert_send(&duplex.send(&envelope, tokio::io::empty()));
        {
            let fut = client.data();
            assert_send(&fut);
            let mut w = fut.await.unwrap_or_else(|_| unreachable!());
            assert_send(&w.write_body(b"x"));
            assert_send(&w.copy_from(&b"x"[..]));
            assert_send(&w.finish());
        }
        assert_send(&client.bdat());
        assert_send(&pool.send(&envelope, b"m"));
        assert_send(&pool.close());
        assert_send(&send_mail(
            "x:25",
            Some(&mut auth),
            "a@x",
            &["b@x"],
            &b"m"[..],
        ));
        assert_send(&send_mail_url("smtp://x", "a@x", &["b@x"], &b"m"[..]));
        assert_send(&Client::connect_url("smtp://x", Options::new()));
        assert_send(&client.quit());
        assert_send(&duplex.close());
    }

    /// Built without TLS (`--no-default-features`, as `.ci/features.sh`
    /// runs it): asking for TLS is a typed error, before any connection.
    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_tls_asking_for_it_is_a_typed_error() {
        use smtp_sansio::UsageError;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(async {
            let unavailable = |r: Result<Client, Error>| {
                matches!(
                    r,
                    Err(Error::Smtp(smtp_sansio::Error::Usage(
                        UsageError::TlsUnavailable
                    )))
                )
            };
            // 192.0.2.1 (TEST-NET-1) is never dialled: the error comes first.
            assert!(unavailable(Client::connect_tls("192.0.2.1:465").await));
            let required = Options::new().with_tls_mode(TlsMode::StartTls(TlsPolicy::Required));
            assert!(unavailable(
                Client::connect_with("192.0.2.1:587", required).await
            ));
            assert!(unavailable(
                Client::connect_url("smtp+starttls://192.0.2.1", Options::new()).await
            ));
        });
    }

    #[test]
    fn send_checks_compile() {
        // The checks above run at compile time; this test only names them.
        let _ = futures_are_send;
    }
}
