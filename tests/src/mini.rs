//! [`MiniSmtpServer`]: a small but real SMTP/LMTP server for in-process tests and demos.
//!
//! Thread-per-connection on top of [`TestServer`]. Handles pipelined input (commands are
//! read from a buffer, replies are batched and flushed when the server would block, as
//! RFC 2920 describes), DATA with dot-unstuffing, BDAT (RFC 3030), STARTTLS (RFC 3207),
//! implicit TLS, AUTH PLAIN/LOGIN/CRAM-MD5/XOAUTH2/OAUTHBEARER, LMTP (RFC 2033: LHLO and one
//! reply per recipient after the message), SIZE enforcement, MAIL/RCPT parameter checks
//! against the advertised extensions, and stores every accepted message.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rustls::ServerConfig;

use crate::Transcript;
use crate::certs::{CertVariant, TestPki};
use crate::conn::{Conn, ConnError, DataCapture};
use crate::server::{Handler, ServerOptions, TestServer};

/// STARTTLS behaviour of a [`MiniSmtpServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartTlsPolicy {
    /// Not advertised; the command gets 502.
    #[default]
    Off,
    /// Advertised and accepted, presenting the given identity.
    Offer(CertVariant),
    /// Advertised, and every command but EHLO/HELO/LHLO/STARTTLS/NOOP/RSET/QUIT gets
    /// `530 5.7.0` before TLS.
    Require(CertVariant),
}

/// What a [`CommandHook`] wants done instead of normal processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    /// Send this reply (CRLF appended if missing) and skip the command.
    Reply(String),
    /// Send this reply, then close the connection gracefully.
    ReplyAndClose(String),
    /// Close gracefully without a reply.
    Close,
    /// Close with RST.
    Reset,
}

/// What a [`CommandHook`] sees.
#[derive(Debug)]
pub struct HookContext<'a> {
    /// Connection index.
    pub conn_index: usize,
    /// The command line without CRLF.
    pub line: &'a str,
    /// The verb, upper-cased.
    pub verb: &'a str,
    /// Whether TLS is active.
    pub tls: bool,
    /// The authenticated user, if any.
    pub auth_user: Option<&'a str>,
    /// Messages accepted so far on this connection.
    pub messages_on_connection: usize,
    /// Commands received so far on this connection (this one excluded).
    pub commands_on_connection: usize,
}

/// Called for every command line before normal processing; `Some` overrides it.
pub type CommandHook = Arc<dyn Fn(&HookContext<'_>) -> Option<HookAction> + Send + Sync>;

/// Options of a [`MiniSmtpServer`].
#[derive(Clone)]
pub struct MiniOptions {
    /// Host name in the greeting and EHLO reply (default `mini.test`).
    pub hostname: String,
    /// Full greeting line (without CRLF) replacing `220 <host> ESMTP MiniSmtpServer`. A
    /// non-2xx greeting makes the server answer `503` to everything but QUIT.
    pub greeting: Option<String>,
    /// EHLO keywords after the host line, advertised verbatim. Behaviour follows them:
    /// `SIZE n` is enforced, `CHUNKING` enables BDAT, and MAIL/RCPT parameters need their
    /// extension (`8BITMIME`/`BINARYMIME` for BODY, `SMTPUTF8`, `DSN`, `REQUIRETLS`,
    /// `MT-PRIORITY`, `DELIVERBY`). Do not list STARTTLS or AUTH here; see `starttls` and
    /// `auth_mechanisms`.
    pub capabilities: Vec<String>,
    /// SASL mechanisms advertised and accepted (default PLAIN, LOGIN, CRAM-MD5). Also
    /// supported: XOAUTH2, OAUTHBEARER (the password is the bearer token). Empty: no AUTH.
    pub auth_mechanisms: Vec<String>,
    /// Accepted (user, password) pairs (default `("user", "password")`).
    pub credentials: Vec<(String, String)>,
    /// Advertise and accept AUTH only over TLS.
    pub auth_requires_tls: bool,
    /// MAIL requires a prior successful AUTH (`530 5.7.0`).
    pub auth_required: bool,
    /// STARTTLS policy.
    pub starttls: StartTlsPolicy,
    /// Start TLS immediately on connect (RFC 8314 implicit TLS) with this identity.
    pub implicit_tls: Option<CertVariant>,
    /// Replaces the test-PKI server config for STARTTLS and implicit TLS.
    pub tls_config: Option<Arc<ServerConfig>>,
    /// Senders (case-insensitive) rejected with `550 5.7.1`.
    pub reject_senders: Vec<String>,
    /// Recipients rejected at RCPT with `550 5.1.1`.
    pub reject_recipients: Vec<String>,
    /// Recipients rejected at RCPT with `450 4.2.1`.
    pub tempfail_recipients: Vec<String>,
    /// Maximum recipients per message (`452 4.5.3` beyond; default 1000).
    pub max_recipients: usize,
    /// LMTP mode: greeting says LMTP, LHLO instead of EHLO/HELO, one reply per accepted
    /// recipient after DATA or the last BDAT chunk.
    pub lmtp: bool,
    /// LMTP per-recipient replies after the message, by recipient (case-insensitive);
    /// recipients not listed get `250 2.1.5 <rcpt> delivered`.
    pub lmtp_data_replies: Vec<(String, String)>,
    /// Reply after the message instead of `250 2.0.0 Ok: queued as N` (non-LMTP). The
    /// message is stored only if this reply starts with `2`.
    pub data_reply: Option<String>,
    /// Reject command lines ending in a bare LF, or containing a bare CR (default true).
    pub strict_crlf: bool,
    /// Longest command line including CRLF (default 16384, enough for long AUTH tokens).
    pub max_command_len: usize,
    /// Delay before every reply (queued replies are flushed after it), e.g. to simulate a
    /// slow server. Default zero.
    pub reply_delay: Duration,
    /// Optional per-command override.
    pub hook: Option<CommandHook>,
    /// Underlying server options (timeouts, recording, bind address).
    pub server: ServerOptions,
}

impl std::fmt::Debug for MiniOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniOptions")
            .field("hostname", &self.hostname)
            .field("capabilities", &self.capabilities)
            .field("auth_mechanisms", &self.auth_mechanisms)
            .field("starttls", &self.starttls)
            .field("implicit_tls", &self.implicit_tls)
            .field("lmtp", &self.lmtp)
            .field("hook", &self.hook.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl Default for MiniOptions {
    fn default() -> Self {
        MiniOptions {
            hostname: "mini.test".into(),
            greeting: None,
            capabilities: [
                "PIPELINING",
                "SIZE 104857600",
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "CHUNKING",
                "SMTPUTF8",
                "DSN",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            auth_mechanisms: vec!["PLAIN".into(), "LOGIN".into(), "CRAM-MD5".into()],
            credentials: vec![("user".into(), "password".into())],
            auth_requires_tls: false,
            auth_required: false,
            starttls: StartTlsPolicy::Off,
            implicit_tls: None,
            tls_config: None,
            reject_senders: Vec::new(),
            reject_recipients: Vec::new(),
            tempfail_recipients: Vec::new(),
            max_recipients: 1000,
            lmtp: false,
            lmtp_data_replies: Vec::new(),
            data_reply: None,
            strict_crlf: true,
            max_command_len: 16384,
            reply_delay: Duration::ZERO,
            hook: None,
            server: ServerOptions::default(),
        }
    }
}

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Server-assigned id (unique per server, from 1).
    pub id: u64,
    /// Connection index it arrived on.
    pub conn_index: usize,
    /// EHLO/HELO/LHLO argument.
    pub helo: String,
    /// Reverse-path without angle brackets (empty for the null sender `<>`).
    pub mail_from: String,
    /// MAIL parameters as sent (e.g. `SIZE=123`, `BODY=8BITMIME`).
    pub mail_params: Vec<String>,
    /// Accepted recipients without angle brackets (LMTP: those whose per-recipient reply
    /// was 2xx).
    pub rcpt_to: Vec<String>,
    /// RCPT parameters, parallel to `rcpt_to`.
    pub rcpt_params: Vec<Vec<String>>,
    /// The exact message bytes: un-stuffed DATA body (ending with the CRLF before the
    /// final dot) or the concatenated BDAT chunks.
    pub data: Vec<u8>,
    /// The wire bytes: dot-stuffed DATA including `.\r\n`, or the concatenated chunks.
    pub raw: Vec<u8>,
    /// Sizes of the BDAT chunks; empty for DATA.
    pub bdat_chunks: Vec<usize>,
    /// Whether the message came with BDAT.
    pub via_bdat: bool,
    /// Whether TLS was active.
    pub tls: bool,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
}

impl ReceivedMessage {
    /// The message as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Shared store of accepted messages.
pub type MessageStore = Arc<Mutex<Vec<ReceivedMessage>>>;

fn lock_store(s: &MessageStore) -> std::sync::MutexGuard<'_, Vec<ReceivedMessage>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running in-process SMTP (or LMTP) server on loopback.
#[derive(Debug)]
pub struct MiniSmtpServer {
    server: TestServer,
    messages: MessageStore,
}

impl MiniSmtpServer {
    /// Starts the server on `options.server.bind` (default `127.0.0.1:0`).
    pub fn start(options: MiniOptions) -> MiniSmtpServer {
        let messages: MessageStore = Arc::default();
        let server_opts = options.server.clone();
        let handler = MiniSmtpServer::handler(options, messages.clone());
        let server = TestServer::start_with(handler, server_opts);
        MiniSmtpServer { server, messages }
    }

    /// The connection handler, to run the mini server inside your own [`TestServer`] (e.g.
    /// as one entry of [`Handler::sequence`] via [`Handler::custom`]).
    pub fn handler(options: MiniOptions, store: MessageStore) -> Handler {
        let shared = Arc::new(Shared {
            opts: options,
            store,
            next_id: AtomicU64::new(1),
        });
        Handler::custom(move |conn| session(conn, &shared))
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.server.connections_accepted()
    }

    /// Connections open right now.
    pub fn connections_open(&self) -> usize {
        self.server.connections_open()
    }

    /// A snapshot of the accepted messages, in acceptance order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        lock_store(&self.messages).clone()
    }

    /// The live message store.
    pub fn message_store(&self) -> MessageStore {
        self.messages.clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passes; returns the
    /// snapshot either way.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || Instant::now() >= deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the server, closing open connections, and returns the transcripts.
    pub fn finish(self) -> Vec<Transcript> {
        self.server.shutdown()
    }
}

struct Shared {
    opts: MiniOptions,
    store: MessageStore,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Txn {
    from: String,
    params: Vec<String>,
    smtputf8: bool,
    binarymime: bool,
    rcpts: Vec<(String, Vec<String>)>,
    bdat: Vec<u8>,
    chunks: Vec<usize>,
    bdat_failed: bool,
}

struct Session<'a> {
    sh: &'a Shared,
    greeted: bool,
    helo: String,
    auth_user: Option<String>,
    txn: Option<Txn>,
    errors: u32,
    messages: usize,
    commands: usize,
    no_service: bool,
}

fn with_crlf(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if !v.ends_with(b"\r\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Parses `FROM:<addr> params` / `TO:<addr> params`.
fn parse_path(arg: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let rest = strip_ci(arg, keyword)?.trim_start_matches(' ');
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let addr = rest[..end].to_string();
    let params = &rest[end + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    let params = params
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    Some((addr, params))
}

fn eq_any(list: &[String], addr: &str) -> bool {
    list.iter().any(|a| a.eq_ignore_ascii_case(addr))
}

enum AuthOutcome {
    Ok(String),
    Failed,
    Cancelled,
    Malformed,
}

impl Session<'_> {
    fn opts(&self) -> &MiniOptions {
        &self.sh.opts
    }

    fn has_cap(&self, name: &str) -> bool {
        self.opts().capabilities.iter().any(|c| {
            c.split(' ')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
        })
    }

    fn size_limit(&self) -> Option<usize> {
        self.opts().capabilities.iter().find_map(|c| {
            let mut it = c.split(' ');
            if it.next()?.eq_ignore_ascii_case("SIZE") {
                it.next()?.parse::<usize>().ok().filter(|&n| n > 0)
            } else {
                None
            }
        })
    }

    fn auth_offered(&self, conn: &Conn) -> bool {
        !self.opts().auth_mechanisms.is_empty() && (!self.opts().auth_requires_tls || conn.is_tls())
    }

    fn reply(&self, conn: &mut Conn, line: &str) {
        if !self.opts().reply_delay.is_zero() {
            conn.sleep(self.opts().reply_delay);
        }
        conn.queue(&with_crlf(line));
    }

    fn tls_config(&self, v: CertVariant) -> Arc<ServerConfig> {
        self.opts()
            .tls_config
            .clone()
            .unwrap_or_else(|| TestPki::get().server_config(v))
    }

    fn reset_after_tls(&mut self) {
        self.greeted = false;
        self.helo.clear();
        self.auth_user = None;
        self.txn = None;
    }

    /// Reads an AUTH continuation line; None when the client cancelled with `*`.
    fn read_sasl(&self, conn: &mut Conn) -> Result<Option<String>, ConnError> {
        let line = conn.read_line_max(self.opts().max_command_len)?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n').trim_end_matches('\r');
        if text == "*" {
            Ok(None)
        } else {
            Ok(Some(text.to_string()))
        }
    }

    fn check(&self, user: &str, pass: &str) -> bool {
        self.opts()
            .credentials
            .iter()
            .any(|(u, p)| u == user && p == pass)
    }

    fn decode(s: &str) -> Option<Vec<u8>> {
        if s == "=" {
            Some(Vec::new())
        } else {
            B64.decode(s.as_bytes()).ok()
        }
    }

    fn auth(
        &mut self,
        conn: &mut Conn,
        mech: &str,
        initial: Option<&str>,
    ) -> Result<AuthOutcome, ConnError> {
        macro_rules! respond {
            ($challenge:expr) => {{
                self.reply(conn, &format!("334 {}", $challenge));
                match self.read_sasl(conn)? {
                    None => return Ok(AuthOutcome::Cancelled),
                    Some(s) => s,
                }
            }};
        }
        match mech {
            "PLAIN" => {
                let resp = match initial {
                    Some(i) => i.to_string(),
                    None => respond!(""),
                };
                let Some(raw) = Self::decode(&resp) else {
                    return Ok(AuthOutcome::Malformed);
                };
                let parts: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
                if parts.len() != 3 {
                    return Ok(AuthOutcome::Malformed);
                }
                let (authz, user, pass) = (
                    String::from_utf8_lossy(parts[0]).into_owned(),
                    String::from_utf8_lossy(parts[1]).into_owned(),
                    String::from_utf8_lossy(parts[2]).into_owned(),
                );
                if (authz.is_empty() || authz == user) && self.check(&user, &pass) {
                    Ok(AuthOutcome::Ok(user))
                } else {
                    Ok(AuthOutcome::Failed)
                }
            }
            "LOGIN" => {
                let u = match initial {
                    Some(i) => i.to_string(),
                    None => respond!("VXNlcm5hbWU6"),
                };
                let p = respond!("UGFzc3dvcmQ6");
                let (Some(u), Some(p)) = (Self::decode(&u), Self::decode(&p)) else {
                    return Ok(AuthOutcome::Malformed);
                };
                let (u, p) = (String::from_utf8_lossy(&u), String::from_utf8_lossy(&p));
                if self.check(&u, &p) {
                    Ok(AuthOutcome::Ok(u.into_owned()))
                } else {
                    Ok(AuthOutcome::Failed)
                }
            }
            "CRAM-MD5" => {
                if initial.is_some() {
                    return Ok(AuthOutcome::Malformed);
                }
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let challenge = format!("<{}.{}@{}>", conn.index(), nanos, self.opts().hostname);
                let resp = respond!(B64.encode(challenge.as_bytes()));
                let Some(raw) = Self::decode(&resp) else {
                    return Ok(AuthOutcome::Malformed);
                };
                let text = String::from_utf8_lossy(&raw);
                let Some((user, digest)) = text.rsplit_once(' ') else {
                    return Ok(AuthOutcome::Malformed);
                };
                let ok = self.opts().credentials.iter().any(|(u, p)| {
                    u == user && cram_md5_digest(p, &challenge).eq_ignore_ascii_case(digest)
                });
                if ok {
                    Ok(AuthOutcome::Ok(user.to_string()))
                } else {
                    Ok(AuthOutcome::Failed)
                }
            }
            "XOAUTH2" | "OAUTHBEARER" => {
                let resp = match initial {
                    Some(i) => i.to_string(),
                    None => respond!(""),
                };
                let Some(raw) = Self::decode(&resp) else {
                    return Ok(AuthOutcome::Malformed);
                };
                let text = String::from_utf8_lossy(&raw).into_owned();
                let parsed = if mech == "XOAUTH2" {
                    parse_xoauth2(&text)
                } else {
                    parse_oauthbearer(&text)
                };
                let Some((user, token)) = parsed else {
                    return Ok(AuthOutcome::Malformed);
                };
                if self.check(&user, &token) {
                    return Ok(AuthOutcome::Ok(user));
                }
                // Error challenge, then the client's dummy response, then 535.
                let err = if mech == "XOAUTH2" {
                    r#"{"status":"401","schemes":"bearer","scope":"https://mail.example/"}"#
                } else {
                    r#"{"status":"invalid_token","scope":"mail"}"#
                };
                let _ = respond!(B64.encode(err));
                Ok(AuthOutcome::Failed)
            }
            _ => Ok(AuthOutcome::Malformed),
        }
    }

    fn check_params(&self, params: &[String], mail: bool, conn: &Conn) -> Result<(), String> {
        for p in params {
            let (key, value) = match p.split_once('=') {
                Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
                None => (p.to_ascii_uppercase(), None),
            };
            let needed = match (mail, key.as_str()) {
                (true, "SIZE") => {
                    let Some(n) = value.and_then(|v| v.parse::<u64>().ok()) else {
                        return Err("501 5.5.4 Bad SIZE parameter".into());
                    };
                    if let Some(limit) = self.size_limit()
                        && n > limit as u64
                    {
                        return Err("552 5.3.4 Message size exceeds fixed limit".into());
                    }
                    "SIZE"
                }
                (true, "BODY") => match value.map(|v| v.to_ascii_uppercase()).as_deref() {
                    Some("7BIT") => continue,
                    Some("8BITMIME") => "8BITMIME",
                    Some("BINARYMIME") => "BINARYMIME",
                    _ => return Err("501 5.5.4 Bad BODY parameter".into()),
                },
                (true, "SMTPUTF8") => "SMTPUTF8",
                (true, "RET") | (true, "ENVID") | (false, "NOTIFY") | (false, "ORCPT") => "DSN",
                (true, "AUTH") => {
                    if self.auth_offered(conn) {
                        continue;
                    }
                    "AUTH"
                }
                (true, "REQUIRETLS") => {
                    if !conn.is_tls() {
                        return Err("530 5.7.10 REQUIRETLS needs TLS".into());
                    }
                    "REQUIRETLS"
                }
                (true, "MT-PRIORITY") => "MT-PRIORITY",
                (true, "BY") => "DELIVERBY",
                _ => return Err(format!("555 5.5.4 Unsupported parameter {key}")),
            };
            if !self.has_cap(needed) {
                return Err(format!(
                    "555 5.5.4 {key} parameter needs the {needed} extension"
                ));
            }
        }
        Ok(())
    }

    fn deliver(&mut self, conn: &mut Conn, data: Vec<u8>, raw: Vec<u8>, via_bdat: bool) {
        let Some(txn) = self.txn.take() else { return };
        if let Some(limit) = self.size_limit()
            && data.len() > limit
        {
            self.reply(conn, "552 5.3.4 Message size exceeds fixed limit");
            return;
        }
        let mut delivered: Vec<(String, Vec<String>)> = Vec::new();
        if self.opts().lmtp {
            for (rcpt, params) in &txn.rcpts {
                let reply = self
                    .opts()
                    .lmtp_data_replies
                    .iter()
                    .find(|(r, _)| r.eq_ignore_ascii_case(rcpt))
                    .map(|(_, reply)| reply.clone())
                    .unwrap_or_else(|| format!("250 2.1.5 <{rcpt}> delivered"));
                if reply.starts_with('2') {
                    delivered.push((rcpt.clone(), params.clone()));
                }
                self.reply(conn, &reply);
            }
        } else {
            let reply = self.opts().data_reply.clone();
            match reply {
                Some(r) => {
                    if r.starts_with('2') {
                        delivered = txn.rcpts.clone();
                    }
                    self.reply(conn, &r);
                }
                None => delivered = txn.rcpts.clone(),
            }
        }
        if delivered.is_empty() {
            return;
        }
        let id = self.sh.next_id.fetch_add(1, Ordering::SeqCst);
        if !self.opts().lmtp && self.opts().data_reply.is_none() {
            self.reply(conn, &format!("250 2.0.0 Ok: queued as {id}"));
        }
        self.messages += 1;
        let (rcpt_to, rcpt_params) = delivered.into_iter().unzip();
        let msg = ReceivedMessage {
            id,
            conn_index: conn.index(),
            helo: self.helo.clone(),
            mail_from: txn.from,
            mail_params: txn.params,
            rcpt_to,
            rcpt_params,
            data,
            raw,
            bdat_chunks: txn.chunks,
            via_bdat,
            tls: conn.is_tls(),
            auth_user: self.auth_user.clone(),
        };
        lock_store(&self.sh.store).push(msg);
    }

    /// Handles one command; returns false when the session is over.
    fn command(&mut self, conn: &mut Conn, line: &str) -> Result<bool, ConnError> {
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a),
            None => (line.to_ascii_uppercase(), ""),
        };
        if let Some(hook) = &self.opts().hook {
            let ctx = HookContext {
                conn_index: conn.index(),
                line,
                verb: &verb,
                tls: conn.is_tls(),
                auth_user: self.auth_user.as_deref(),
                messages_on_connection: self.messages,
                commands_on_connection: self.commands,
            };
            let action = hook(&ctx);
            self.commands += 1;
            match action {
                None => {}
                Some(HookAction::Reply(r)) => {
                    self.reply(conn, &r);
                    return Ok(true);
                }
                Some(HookAction::ReplyAndClose(r)) => {
                    self.reply(conn, &r);
                    conn.close();
                    return Ok(false);
                }
                Some(HookAction::Close) => {
                    conn.close();
                    return Ok(false);
                }
                Some(HookAction::Reset) => {
                    conn.reset();
                    return Ok(false);
                }
            }
        } else {
            self.commands += 1;
        }
        let host = self.opts().hostname.clone();
        if self.no_service {
            if verb == "QUIT" {
                self.reply(conn, "221 2.0.0 Bye");
                conn.close();
                return Ok(false);
            }
            self.reply(conn, "503 5.5.1 No service");
            return Ok(true);
        }
        let tls_required = matches!(self.opts().starttls, StartTlsPolicy::Require(_));
        if tls_required
            && !conn.is_tls()
            && !matches!(
                verb.as_str(),
                "EHLO" | "HELO" | "LHLO" | "STARTTLS" | "NOOP" | "RSET" | "QUIT"
            )
        {
            self.reply(conn, "530 5.7.0 Must issue a STARTTLS command first");
            return Ok(true);
        }
        match verb.as_str() {
            "EHLO" | "HELO" | "LHLO" => {
                let lmtp = self.opts().lmtp;
                if lmtp != (verb == "LHLO") {
                    let msg = if lmtp {
                        "500 5.5.1 Use LHLO"
                    } else {
                        "500 5.5.2 Error: command not recognized"
                    };
                    self.reply(conn, msg);
                    self.errors += 1;
                    return Ok(true);
                }
                if arg.trim().is_empty() {
                    self.reply(conn, &format!("501 5.5.4 Syntax: {verb} hostname"));
                    return Ok(true);
                }
                self.greeted = true;
                self.helo = arg.trim().to_string();
                self.txn = None;
                if verb == "HELO" {
                    self.reply(conn, &format!("250 {host}"));
                    return Ok(true);
                }
                let mut caps: Vec<String> = self.opts().capabilities.clone();
                if self.opts().starttls != StartTlsPolicy::Off && !conn.is_tls() {
                    caps.push("STARTTLS".into());
                }
                if self.auth_offered(conn) {
                    caps.push(format!("AUTH {}", self.opts().auth_mechanisms.join(" ")));
                }
                let refs: Vec<&str> = caps.iter().map(String::as_str).collect();
                let reply = crate::script::ehlo_reply(&host, &refs);
                if !self.opts().reply_delay.is_zero() {
                    conn.sleep(self.opts().reply_delay);
                }
                conn.queue(&reply);
            }
            "STARTTLS" => {
                let variant = match self.opts().starttls {
                    StartTlsPolicy::Off => {
                        self.reply(conn, "502 5.5.1 Error: command not implemented");
                        return Ok(true);
                    }
                    StartTlsPolicy::Offer(v) | StartTlsPolicy::Require(v) => v,
                };
                if conn.is_tls() {
                    self.reply(conn, "503 5.5.1 TLS already active");
                } else if !arg.is_empty() {
                    self.reply(conn, "501 5.5.4 Syntax: STARTTLS");
                } else {
                    self.reply(conn, "220 2.0.0 Ready to start TLS");
                    let config = self.tls_config(variant);
                    if let Err(e) = conn.start_tls(config) {
                        conn.fail_with(None, "STARTTLS handshake", &e);
                        return Ok(false);
                    }
                    self.reset_after_tls();
                }
            }
            "AUTH" => {
                if !self.auth_offered(conn) {
                    self.reply(conn, "503 5.5.1 Error: authentication not enabled");
                    return Ok(true);
                }
                if !self.greeted {
                    self.reply(conn, "503 5.5.1 Error: send EHLO first");
                    return Ok(true);
                }
                if self.auth_user.is_some() {
                    self.reply(conn, "503 5.5.1 Error: already authenticated");
                    return Ok(true);
                }
                if self.txn.is_some() {
                    self.reply(conn, "503 5.5.1 Error: MAIL transaction in progress");
                    return Ok(true);
                }
                let mut words = arg.split(' ').filter(|w| !w.is_empty());
                let mech = words.next().unwrap_or("").to_ascii_uppercase();
                let initial = words.next();
                if mech.is_empty() {
                    self.reply(conn, "501 5.5.4 Syntax: AUTH mechanism");
                    return Ok(true);
                }
                if !self
                    .opts()
                    .auth_mechanisms
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&mech))
                {
                    self.reply(conn, "504 5.5.4 Unrecognized authentication type");
                    return Ok(true);
                }
                match self.auth(conn, &mech, initial)? {
                    AuthOutcome::Ok(user) => {
                        self.auth_user = Some(user);
                        self.reply(conn, "235 2.7.0 Authentication successful");
                    }
                    AuthOutcome::Failed => {
                        self.reply(conn, "535 5.7.8 Error: authentication failed");
                    }
                    AuthOutcome::Cancelled => {
                        self.reply(conn, "501 5.7.0 Authentication cancelled");
                    }
                    AuthOutcome::Malformed => {
                        self.reply(conn, "501 5.5.2 Cannot decode response");
                    }
                }
            }
            "MAIL" => {
                if !self.greeted {
                    self.reply(conn, "503 5.5.1 Error: send HELO/EHLO first");
                    return Ok(true);
                }
                if self.opts().auth_required && self.auth_user.is_none() {
                    self.reply(conn, "530 5.7.0 Authentication required");
                    return Ok(true);
                }
                if self.txn.is_some() {
                    self.reply(conn, "503 5.5.1 Error: nested MAIL command");
                    return Ok(true);
                }
                let Some((from, params)) = parse_path(arg, "FROM:") else {
                    self.reply(conn, "501 5.5.4 Syntax: MAIL FROM:<address>");
                    return Ok(true);
                };
                if let Err(r) = self.check_params(&params, true, conn) {
                    self.reply(conn, &r);
                    return Ok(true);
                }
                let smtputf8 = params.iter().any(|p| p.eq_ignore_ascii_case("SMTPUTF8"));
                if !from.is_ascii() && !smtputf8 {
                    self.reply(conn, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
                    return Ok(true);
                }
                if eq_any(&self.opts().reject_senders, &from) {
                    self.reply(
                        conn,
                        &format!("550 5.7.1 <{from}>: Sender address rejected"),
                    );
                    return Ok(true);
                }
                let binarymime = params
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case("BODY=BINARYMIME"));
                self.txn = Some(Txn {
                    from,
                    params,
                    smtputf8,
                    binarymime,
                    ..Txn::default()
                });
                self.reply(conn, "250 2.1.0 Ok");
            }
            "RCPT" => {
                let Some(txn) = &self.txn else {
                    self.reply(conn, "503 5.5.1 Error: need MAIL command");
                    return Ok(true);
                };
                let smtputf8 = txn.smtputf8;
                let count = txn.rcpts.len();
                let Some((to, params)) = parse_path(arg, "TO:") else {
                    self.reply(conn, "501 5.5.4 Syntax: RCPT TO:<address>");
                    return Ok(true);
                };
                if to.is_empty() {
                    self.reply(conn, "501 5.1.3 Bad recipient address syntax");
                    return Ok(true);
                }
                if let Err(r) = self.check_params(&params, false, conn) {
                    self.reply(conn, &r);
                    return Ok(true);
                }
                if !to.is_ascii() && !smtputf8 {
                    self.reply(conn, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
                    return Ok(true);
                }
                if count >= self.opts().max_recipients {
                    self.reply(conn, "452 4.5.3 Error: too many recipients");
                    return Ok(true);
                }
                if eq_any(&self.opts().reject_recipients, &to) {
                    self.reply(
                        conn,
                        &format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown"),
                    );
                    return Ok(true);
                }
                if eq_any(&self.opts().tempfail_recipients, &to) {
                    self.reply(
                        conn,
                        &format!("450 4.2.1 <{to}>: Recipient address temporarily rejected"),
                    );
                    return Ok(true);
                }
                if let Some(txn) = &mut self.txn {
                    txn.rcpts.push((to, params));
                }
                self.reply(conn, "250 2.1.5 Ok");
            }
            "DATA" => {
                if !arg.is_empty() {
                    self.reply(conn, "501 5.5.4 Syntax: DATA");
                    return Ok(true);
                }
                let Some(txn) = &self.txn else {
                    self.reply(conn, "503 5.5.1 Error: need MAIL command");
                    return Ok(true);
                };
                if !txn.chunks.is_empty() {
                    self.reply(conn, "503 5.5.1 Error: DATA not allowed after BDAT");
                    return Ok(true);
                }
                if txn.binarymime {
                    self.reply(conn, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT");
                    return Ok(true);
                }
                if txn.rcpts.is_empty() {
                    self.reply(conn, "554 5.5.1 Error: no valid recipients");
                    return Ok(true);
                }
                self.reply(conn, "354 End data with <CR><LF>.<CR><LF>");
                let cap: DataCapture = conn.read_data()?;
                self.deliver(conn, cap.message, cap.raw, false);
            }
            "BDAT" => {
                let Some((size, last)) = crate::conn::parse_bdat(format!("{line}\r\n").as_bytes())
                else {
                    self.reply(conn, "501 5.5.4 Syntax: BDAT size [LAST]");
                    return Ok(true);
                };
                let chunk = conn.read_bdat_payload(size, last)?;
                if !self.has_cap("CHUNKING") {
                    self.reply(conn, "502 5.5.1 Error: command not implemented");
                    return Ok(true);
                }
                let limit = self.size_limit();
                let Some(txn) = &mut self.txn else {
                    self.reply(conn, "503 5.5.1 Error: need MAIL command");
                    return Ok(true);
                };
                if txn.rcpts.is_empty() {
                    self.reply(conn, "554 5.5.1 Error: no valid recipients");
                    return Ok(true);
                }
                if txn.bdat_failed {
                    self.reply(conn, "503 5.5.1 Error: previous BDAT failed, send RSET");
                    return Ok(true);
                }
                txn.bdat.extend_from_slice(&chunk.raw);
                txn.chunks.push(size);
                if limit.is_some_and(|l| txn.bdat.len() > l) {
                    txn.bdat_failed = true;
                    txn.bdat = Vec::new();
                    self.reply(conn, "552 5.3.4 Message size exceeds fixed limit");
                    return Ok(true);
                }
                if last {
                    let data = std::mem::take(&mut txn.bdat);
                    self.deliver(conn, data.clone(), data, true);
                } else {
                    self.reply(conn, &format!("250 2.0.0 {size} octets received"));
                }
            }
            "RSET" => {
                if !arg.is_empty() {
                    self.reply(conn, "501 5.5.4 Syntax: RSET");
                    return Ok(true);
                }
                self.txn = None;
                self.reply(conn, "250 2.0.0 Ok");
            }
            "NOOP" => self.reply(conn, "250 2.0.0 Ok"),
            "VRFY" => {
                let who = arg.trim().trim_start_matches('<').trim_end_matches('>');
                if who.is_empty() {
                    self.reply(conn, "501 5.5.4 Syntax: VRFY address");
                } else if eq_any(&self.opts().reject_recipients, who) {
                    self.reply(conn, &format!("550 5.1.1 <{who}>: User unknown"));
                } else {
                    self.reply(conn, "252 2.0.0 Cannot VRFY user, but will accept message");
                }
            }
            "EXPN" => self.reply(conn, "502 5.5.1 Error: EXPN not supported"),
            "HELP" => self.reply(conn, "214 2.0.0 See RFC 5321"),
            "QUIT" => {
                self.reply(conn, "221 2.0.0 Bye");
                conn.close();
                return Ok(false);
            }
            _ => {
                self.errors += 1;
                self.reply(conn, "500 5.5.2 Error: command not recognized");
            }
        }
        Ok(true)
    }
}

fn parse_xoauth2(text: &str) -> Option<(String, String)> {
    let mut user = None;
    let mut token = None;
    for part in text.split('\x01') {
        if let Some(u) = part.strip_prefix("user=") {
            user = Some(u.to_string());
        } else if let Some(a) = strip_ci(part, "auth=Bearer ") {
            token = Some(a.to_string());
        }
    }
    Some((user?, token?))
}

fn parse_oauthbearer(text: &str) -> Option<(String, String)> {
    let mut parts = text.split('\x01');
    let gs2 = parts.next()?;
    let user = gs2
        .split(',')
        .find_map(|f| f.strip_prefix("a="))?
        .to_string();
    let token = parts.find_map(|p| strip_ci(p, "auth=Bearer "))?.to_string();
    Some((user, token))
}

/// HMAC-MD5 of `challenge` keyed with `password`, lower-case hex (RFC 2195).
pub fn cram_md5_digest(password: &str, challenge: &str) -> String {
    let Ok(mut mac) = Hmac::<md5::Md5>::new_from_slice(password.as_bytes()) else {
        return String::new();
    };
    mac.update(challenge.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn session(conn: &mut Conn, sh: &Shared) -> Result<(), ConnError> {
    let opts = &sh.opts;
    let mut s = Session {
        sh,
        greeted: false,
        helo: String::new(),
        auth_user: None,
        txn: None,
        errors: 0,
        messages: 0,
        commands: 0,
        no_service: false,
    };
    if let Some(v) = opts.implicit_tls {
        let config = s.tls_config(v);
        if let Err(e) = conn.start_tls(config) {
            conn.fail_with(None, "implicit TLS handshake", &e);
            return Ok(());
        }
    }
    let greeting = match &opts.greeting {
        Some(g) => g.clone(),
        None if opts.lmtp => format!("220 {} LMTP MiniSmtpServer ready", opts.hostname),
        None => format!("220 {} ESMTP MiniSmtpServer", opts.hostname),
    };
    s.no_service = !greeting.starts_with('2');
    s.reply(conn, &greeting);
    loop {
        let line = match conn.read_line_max(opts.max_command_len) {
            Ok(l) => l,
            Err(ConnError::LineTooLong { .. }) => {
                s.errors += 1;
                s.reply(conn, "500 5.5.2 Error: line too long");
                continue;
            }
            Err(ConnError::Eof) => return Ok(()),
            Err(ConnError::Io(e)) => {
                conn.note(format!("client I/O error: {e}"));
                return Ok(());
            }
            Err(ConnError::Timeout) => {
                s.reply(
                    conn,
                    &format!("421 4.4.2 {} Error: timeout exceeded", opts.hostname),
                );
                conn.close();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let crlf = body.ends_with(b"\r");
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if opts.strict_crlf && (!crlf || body.contains(&b'\r')) {
            s.errors += 1;
            s.reply(conn, "500 5.5.2 Error: bare CR or LF in command");
        } else {
            match std::str::from_utf8(body) {
                Ok(text) => {
                    if !s.command(conn, text)? {
                        return Ok(());
                    }
                }
                Err(_) => {
                    s.errors += 1;
                    s.reply(conn, "500 5.5.2 Error: invalid UTF-8 in command");
                }
            }
        }
        if s.errors >= 10 {
            s.reply(
                conn,
                &format!("421 4.7.0 {} Error: too many errors", opts.hostname),
            );
            conn.close();
            return Ok(());
        }
    }
}
