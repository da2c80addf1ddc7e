//! The embedded demo server: a small, bounded SMTP (or LMTP) server on
//! 127.0.0.1, just enough to show a real send. It is the core's server
//! session ([`smtp_blocking::server`]) with a handler that keeps what it
//! receives: the protocol, its limits and its deadlines are the library's.
//!
//! It serves one connection at a time until stopped, with a certificate
//! for `localhost`, `127.0.0.1` and `::1` signed by a throw-away CA made on
//! the fly (rcgen), STARTTLS (required or offered) or TLS from the first
//! byte, AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or OAUTHBEARER) for one
//! account, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and SIZE.
//! Bytes pipelined behind STARTTLS end the connection (response injection).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_blocking::server::{
    self as smtp_server, Credentials, Handler, HelloKind, Response, ServerMechanism, SmtpServer,
    Transaction,
};
use smtp_sansio::{
    BodyType, DsnNotify, DsnReturn, EnhancedCode, MailParams, Mailbox, RcptParams, ReplyCode,
    ReversePath, xtext_encode,
};

/// The name the server greets with.
const HOSTNAME: &str = "mx.localhost";
/// The largest message accepted, advertised as SIZE.
pub(crate) const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// Every wait for the client ends after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server does TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DemoTls {
    /// No TLS at all.
    None,
    /// STARTTLS offered; MAIL refused before it.
    RequireStarttls,
    /// STARTTLS offered, plaintext allowed.
    OfferStarttls,
    /// TLS from the first byte.
    Implicit,
}

/// What the server accepts.
#[derive(Debug, Clone)]
pub(crate) struct DemoOptions {
    /// TLS mode.
    pub(crate) tls: DemoTls,
    /// Speak LMTP (LHLO, one reply per recipient after the message).
    pub(crate) lmtp: bool,
    /// The AUTH mechanism offered (PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or
    /// OAUTHBEARER), then required before MAIL; `None`: no AUTH.
    pub(crate) mechanism: Option<&'static str>,
    /// The one account.
    pub(crate) user: String,
    /// Its password (the token, for the bearer mechanisms).
    pub(crate) password: String,
}

/// One message as the server stored it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Received {
    /// Whether the session was over TLS when the message came.
    pub(crate) tls: bool,
    /// The authenticated user.
    pub(crate) auth_user: Option<String>,
    /// The EHLO/HELO/LHLO argument.
    pub(crate) helo: String,
    /// The MAIL FROM address.
    pub(crate) mail_from: String,
    /// Its parameters.
    pub(crate) mail_params: Vec<String>,
    /// The RCPT TO addresses.
    pub(crate) rcpt_to: Vec<String>,
    /// Their parameters.
    pub(crate) rcpt_params: Vec<Vec<String>>,
    /// The message, dot-stuffing removed, CRLF line ends.
    pub(crate) data: Vec<u8>,
}

/// A running demo server.
#[derive(Debug)]
pub(crate) struct DemoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    messages: Arc<Mutex<Vec<Received>>>,
    ca: CertificateDer<'static>,
}

impl DemoServer {
    /// Generates the certificates, binds 127.0.0.1 on a free port and
    /// starts serving.
    pub(crate) fn start(options: DemoOptions) -> Result<Self, String> {
        let (tls, ca) = tls_config().map_err(|e| format!("generating the certificate: {e}"))?;
        let mut server = SmtpServer::bind(("127.0.0.1", 0), session_config(&options))
            .map_err(|e| format!("bind: {e}"))?;
        server = match options.tls {
            DemoTls::None => server,
            DemoTls::Implicit => server.with_implicit_tls(tls),
            DemoTls::RequireStarttls | DemoTls::OfferStarttls => server.with_starttls(tls),
        };
        let addr = server.local_addr().map_err(|e| format!("bind: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, messages) = (stop.clone(), messages.clone());
            std::thread::Builder::new()
                .name("smtp-send demo server".into())
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let mut keep = Keep::new(&options, &messages);
                        // A failed session (timeout, reset, TLS error) ends
                        // that connection only.
                        let _ = server.serve_one(&mut keep);
                    }
                })
                .map_err(|e| format!("starting the server thread: {e}"))?
        };
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
            messages,
            ca,
        })
    }

    /// The port it listens on (on 127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The throw-away CA that signed the server's certificate.
    pub(crate) fn ca(&self) -> CertificateDer<'static> {
        self.ca.clone()
    }

    /// The messages stored so far.
    pub(crate) fn messages(&self) -> Vec<Received> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for DemoServer {
    /// Stops accepting and waits for the thread (a connection in progress
    /// ends at its next timeout at the latest).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the session offers: the demo's options as the core's settings.
fn session_config(options: &DemoOptions) -> smtp_server::ServerConfig {
    let protocol = if options.lmtp { "LMTP" } else { "ESMTP" };
    let mut config = smtp_server::ServerConfig::new(HOSTNAME)
        .with_lmtp(options.lmtp)
        // The demo prints "body by DATA": no CHUNKING.
        .with_chunking(false);
    config.greeting = format!("{protocol} smtp-send demo server");
    let mechanism = match options.mechanism {
        Some("PLAIN") => Some(ServerMechanism::Plain),
        Some("LOGIN") => Some(ServerMechanism::Login),
        Some("CRAM-MD5") => Some(ServerMechanism::CramMd5),
        Some("XOAUTH2") => Some(ServerMechanism::XOAuth2),
        Some("OAUTHBEARER") => Some(ServerMechanism::OAuthBearer),
        _ => None,
    };
    if let Some(mechanism) = mechanism {
        config.auth_mechanisms = vec![mechanism];
        config.require_auth = true;
        config.auth_without_tls = options.tls == DemoTls::None;
    }
    config.require_tls = options.tls == DemoTls::RequireStarttls;
    config.limits.max_message_size = MAX_MESSAGE as u64;
    config.limits.max_line_len = 4096;
    config.timeouts.command = IO_TIMEOUT;
    config.timeouts.data_block = IO_TIMEOUT;
    config.timeouts.write = IO_TIMEOUT;
    config.timeouts.tls_handshake = IO_TIMEOUT;
    config
}

/// The handler: checks the one account, keeps every message.
struct Keep<'a> {
    options: &'a DemoOptions,
    messages: &'a Mutex<Vec<Received>>,
    tls: bool,
    helo: String,
    auth_user: Option<String>,
    current: Received,
}

impl<'a> Keep<'a> {
    fn new(options: &'a DemoOptions, messages: &'a Mutex<Vec<Received>>) -> Self {
        Self {
            options,
            messages,
            tls: options.tls == DemoTls::Implicit,
            helo: String::new(),
            auth_user: None,
            current: Received::default(),
        }
    }
}

impl Handler for Keep<'_> {
    fn hello(&mut self, _: HelloKind, domain: &str) -> Response {
        self.helo = domain.to_owned();
        Response::accept()
    }

    fn tls_started(&mut self) {
        self.tls = true;
        self.auth_user = None;
    }

    fn auth(&mut self, credentials: &Credentials) -> Response {
        let (user, secret) = (&self.options.user, &self.options.password);
        let ok = credentials.verify_password(user, secret)
            || (credentials.username() == user && credentials.verify_cram_md5(secret))
            || credentials.verify_token(user, secret);
        if ok {
            self.auth_user = Some(user.clone());
            Response::accept()
        } else {
            let code = ReplyCode::new(535).unwrap_or(ReplyCode::SERVICE_NOT_AVAILABLE);
            Response::refuse(
                code,
                EnhancedCode::new(5, 7, 8),
                "Authentication credentials invalid",
            )
        }
    }

    fn mail(&mut self, from: &ReversePath, params: &MailParams) -> Response {
        self.current = Received {
            tls: self.tls,
            auth_user: self.auth_user.clone(),
            helo: self.helo.clone(),
            mail_from: from.as_str().to_owned(),
            mail_params: mail_words(params),
            ..Received::default()
        };
        Response::accept()
    }

    fn rcpt(&mut self, to: &Mailbox, params: &RcptParams) -> Response {
        self.current.rcpt_to.push(to.as_str().to_owned());
        self.current.rcpt_params.push(rcpt_words(params));
        Response::accept()
    }

    fn body(&mut self, chunk: &[u8]) {
        self.current.data.extend_from_slice(chunk);
    }

    fn message(&mut self, _: &Transaction) -> Response {
        let received = std::mem::take(&mut self.current);
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(received);
        Response::accept()
    }

    fn reset(&mut self) {
        self.current = Received::default();
    }

    fn aborted(&mut self, _: smtp_server::AbortReason) {
        self.current = Received::default();
    }
}

/// MAIL's parameters as the client wrote them (the order the demo prints).
fn mail_words(p: &MailParams) -> Vec<String> {
    let mut words = Vec::new();
    match p.body {
        BodyType::SevenBit => words.push("BODY=7BIT".to_owned()),
        BodyType::EightBitMime => words.push("BODY=8BITMIME".to_owned()),
        BodyType::BinaryMime => words.push("BODY=BINARYMIME".to_owned()),
        _ => {}
    }
    if let Some(size) = p.size {
        words.push(format!("SIZE={size}"));
    }
    if p.smtputf8 {
        words.push("SMTPUTF8".to_owned());
    }
    match p.ret {
        Some(DsnReturn::Full) => words.push("RET=FULL".to_owned()),
        Some(DsnReturn::Headers) => words.push("RET=HDRS".to_owned()),
        None => {}
    }
    if let Some(envid) = &p.envid {
        words.push(format!("ENVID={}", xtext_encode(envid)));
    }
    if p.requiretls {
        words.push("REQUIRETLS".to_owned());
    }
    words.extend(p.extra.iter().map(|e| match e.value() {
        Some(v) => format!("{}={v}", e.keyword()),
        None => e.keyword().to_owned(),
    }));
    words
}

/// RCPT's parameters as the client wrote them.
fn rcpt_words(p: &RcptParams) -> Vec<String> {
    let mut words = Vec::new();
    if let Some(notify) = p.notify {
        words.push(match notify {
            DsnNotify::On {
                success,
                failure,
                delay,
            } if success || failure || delay => {
                let on = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")];
                let names: Vec<&str> = on.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
                format!("NOTIFY={}", names.join(","))
            }
            _ => "NOTIFY=NEVER".to_owned(),
        });
    }
    if let Some(orcpt) = &p.orcpt {
        words.push(format!("ORCPT=rfc822;{}", xtext_encode(orcpt.as_str())));
    }
    words.extend(p.extra.iter().map(|e| match e.value() {
        Some(v) => format!("{}={v}", e.keyword()),
        None => e.keyword().to_owned(),
    }));
    words
}

/// A server config presenting a fresh leaf, and the CA that signed it.
fn tls_config() -> Result<(Arc<ServerConfig>, CertificateDer<'static>), Box<dyn std::error::Error>>
{
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "smtp-send demo throw-away CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;

    let leaf_key = KeyPair::generate()?;
    let names = ["localhost", "127.0.0.1", "::1"].map(str::to_owned);
    let mut leaf_params = CertificateParams::new(names.to_vec())?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.is_ca = IsCa::NoCa;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
    Ok((Arc::new(config), ca.der().clone()))
}
