//! The embedded demo server: a small, bounded SMTP (or LMTP) server on
//! 127.0.0.1 with std sockets and rustls, just enough to show a real send.
//!
//! It serves one connection at a time until stopped, with a certificate
//! for `localhost`, `127.0.0.1` and `::1` signed by a throw-away CA made on
//! the fly (rcgen), STARTTLS (required or offered) or TLS from the first
//! byte, AUTH (PLAIN, LOGIN, CRAM-MD5, XOAUTH2 or OAUTHBEARER) for one
//! account, PIPELINING, 8BITMIME,
//! SMTPUTF8, ENHANCEDSTATUSCODES and SIZE. Every buffer is bounded (command
//! lines, message size, recipients) and every read and write times out.
//! Bytes pipelined behind STARTTLS end the connection (response injection).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The name the server greets with.
const HOSTNAME: &str = "mx.localhost";
/// The longest command line accepted (RFC 5321 allows 512; extensions add).
const MAX_COMMAND_LINE: usize = 4096;
/// The longest line inside a message (RFC 5322 allows 998 + CRLF; a little
/// slack for careless senders).
const MAX_DATA_LINE: usize = 64 * 1024;
/// The largest message accepted, advertised as SIZE.
pub(crate) const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// The most recipients of one transaction.
const MAX_RECIPIENTS: usize = 100;
/// The most commands of one session (RSET loops end too).
const MAX_COMMANDS: usize = 1000;
/// Every read and write waits at most this long.
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
    /// OAUTHBEARER), then required
    /// before MAIL; `None`: no AUTH.
    pub(crate) mechanism: Option<&'static str>,
    /// The one account.
    pub(crate) user: String,
    /// Its password.
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
        let (config, ca) = tls_config().map_err(|e| format!("generating the certificate: {e}"))?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, messages) = (stop.clone(), messages.clone());
            std::thread::Builder::new()
                .name("smtp-send demo server".into())
                .spawn(move || serve(&listener, &stop, &options, &config, &messages))
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

fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    options: &DemoOptions,
    config: &Arc<ServerConfig>,
    messages: &Mutex<Vec<Received>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        // A failed session (timeout, reset, TLS error) ends that connection
        // only.
        let _ = Session::run(stream, options, config, messages);
    }
}

/// The socket, in plaintext or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// Only while switching.
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
            Self::Gone => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
            Self::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
            Self::Gone => Ok(()),
        }
    }
}

/// A line longer than allowed: answered with 500, then the connection ends.
#[derive(Debug)]
struct TooLong;

struct Session<'a> {
    stream: Stream,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    options: &'a DemoOptions,
    config: &'a Arc<ServerConfig>,
    tls: bool,
    helo: Option<String>,
    auth_user: Option<String>,
    /// The open transaction: MAIL, then the RCPTs.
    mail: Option<Received>,
}

impl<'a> Session<'a> {
    fn run(
        tcp: TcpStream,
        options: &'a DemoOptions,
        config: &'a Arc<ServerConfig>,
        messages: &Mutex<Vec<Received>>,
    ) -> io::Result<()> {
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let _ = tcp.set_nodelay(true);
        let implicit = options.tls == DemoTls::Implicit;
        let stream = if implicit {
            let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let mut session = Session {
            stream,
            buf: Vec::new(),
            options,
            config,
            tls: implicit,
            helo: None,
            auth_user: None,
            mail: None,
        };
        let protocol = if options.lmtp { "LMTP" } else { "ESMTP" };
        session.reply(&format!("220 {HOSTNAME} {protocol} smtp-send demo server"))?;
        let result = session.commands(messages);
        if let Stream::Tls(s) = &mut session.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let tcp = match &session.stream {
            Stream::Plain(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Gone => None,
        };
        if let Some(tcp) = tcp {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        result
    }

    fn reply(&mut self, line: &str) -> io::Result<()> {
        self.stream.write_all(line.as_bytes())?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()
    }

    /// The next line without its line end; `Ok(None)` at end of stream.
    fn line(&mut self, max: usize) -> io::Result<Result<Option<Vec<u8>>, TooLong>> {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > max {
                    return Ok(Err(TooLong));
                }
                return Ok(Ok(Some(line)));
            }
            if self.buf.len() > max + 2 {
                return Ok(Err(TooLong));
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(Ok(None));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn commands(&mut self, messages: &Mutex<Vec<Received>>) -> io::Result<()> {
        for _ in 0..MAX_COMMANDS {
            let line = match self.line(MAX_COMMAND_LINE)? {
                Ok(Some(line)) => String::from_utf8_lossy(&line).into_owned(),
                Ok(None) => return Ok(()),
                Err(TooLong) => return self.reply("500 5.5.2 Line too long"),
            };
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            let verb = verb.to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" if !self.options.lmtp => self.hello(arg, verb == "EHLO")?,
                "LHLO" if self.options.lmtp => self.hello(arg, true)?,
                "STARTTLS" if self.starttls_offered() => {
                    if !self.starttls()? {
                        return Ok(());
                    }
                }
                "AUTH" => self.auth(arg)?,
                "MAIL" => self.mail(arg)?,
                "RCPT" => self.rcpt(arg)?,
                "DATA" => {
                    if !self.data(messages)? {
                        return Ok(());
                    }
                }
                "RSET" => {
                    self.mail = None;
                    self.reply("250 2.0.0 Ok")?;
                }
                "NOOP" => self.reply("250 2.0.0 Ok")?,
                "QUIT" => return self.reply("221 2.0.0 Bye"),
                _ => self.reply("502 5.5.2 Command not recognized")?,
            }
        }
        self.reply("421 4.7.0 Too many commands, closing")
    }

    fn starttls_offered(&self) -> bool {
        !self.tls
            && matches!(
                self.options.tls,
                DemoTls::RequireStarttls | DemoTls::OfferStarttls
            )
    }

    fn auth_offered(&self) -> Option<&'static str> {
        let tls_ok = self.tls || self.options.tls == DemoTls::None;
        self.options.mechanism.filter(|_| tls_ok)
    }

    fn hello(&mut self, arg: &str, extended: bool) -> io::Result<()> {
        self.helo = Some(arg.trim().to_owned());
        self.mail = None;
        if !extended {
            return self.reply(&format!("250 {HOSTNAME}"));
        }
        let mut lines = vec![
            HOSTNAME.to_owned(),
            "PIPELINING".to_owned(),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            format!("SIZE {MAX_MESSAGE}"),
        ];
        if self.starttls_offered() {
            lines.push("STARTTLS".to_owned());
        }
        if let Some(mechanism) = self.auth_offered().filter(|_| self.auth_user.is_none()) {
            lines.push(format!("AUTH {mechanism}"));
        }
        let last = lines.len() - 1;
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect();
        self.reply(&text.join("\r\n"))
    }

    /// `false` when the connection must end.
    fn starttls(&mut self) -> io::Result<bool> {
        if !self.buf.is_empty() {
            // Commands pipelined behind STARTTLS: response injection.
            self.reply("503 5.5.1 Nothing may follow STARTTLS before the handshake")?;
            return Ok(false);
        }
        self.reply("220 2.0.0 Ready to start TLS")?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Ok(false);
        };
        let conn = ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        self.tls = true;
        self.helo = None;
        self.auth_user = None;
        self.mail = None;
        Ok(true)
    }

    fn auth(&mut self, arg: &str) -> io::Result<()> {
        let mut words = arg.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        if self.helo.is_none() || self.auth_user.is_some() || self.mail.is_some() {
            return self.reply("503 5.5.1 Bad sequence of commands");
        }
        if self.auth_offered() != Some(mechanism.as_str()) {
            return self.reply("504 5.5.4 Unrecognized authentication type");
        }
        let Some(user) = self.exchange(&mechanism, initial)? else {
            return Ok(());
        };
        match user {
            Some(user) => {
                self.auth_user = Some(user);
                self.reply("235 2.7.0 Authentication successful")
            }
            None => self.reply("535 5.7.8 Authentication credentials invalid"),
        }
    }

    /// Runs `mechanism`'s exchange: `Ok(None)` when a reply already ended
    /// it, `Ok(Some(None))` for wrong credentials, `Ok(Some(Some(user)))`
    /// when they check out.
    fn exchange(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
    ) -> io::Result<Option<Option<String>>> {
        let (want_user, want_password) = (self.options.user.clone(), self.options.password.clone());
        let ok = |user: &[u8], secret: &[u8]| {
            (user == want_user.as_bytes() && secret == want_password.as_bytes())
                .then(|| want_user.clone())
        };
        Ok(Some(match mechanism {
            "PLAIN" => {
                let Some(response) = self.challenge(b"", initial)? else {
                    return Ok(None);
                };
                let fields: Vec<&[u8]> = response.split(|&b| b == 0).collect();
                match fields[..] {
                    [_authzid, user, password] => ok(user, password),
                    _ => None,
                }
            }
            "LOGIN" => {
                let Some(user) = self.challenge(b"Username:", initial)? else {
                    return Ok(None);
                };
                let Some(password) = self.challenge(b"Password:", None)? else {
                    return Ok(None);
                };
                ok(&user, &password)
            }
            "CRAM-MD5" => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let challenge = format!("<{nanos}.{}@{HOSTNAME}>", std::process::id());
                let Some(response) = self.challenge(challenge.as_bytes(), None)? else {
                    return Ok(None);
                };
                // The expected answer, computed as the client computes it.
                let mut expected = smtp_blocking::CramMd5Auth::new(&want_user, &want_password);
                use smtp_blocking::Auth as _;
                match expected.next(challenge.as_bytes(), true) {
                    Ok(want) if want.expose()[..] == response[..] => Some(want_user.clone()),
                    _ => None,
                }
            }
            "XOAUTH2" | "OAUTHBEARER" => {
                let Some(response) = self.challenge(b"", initial)? else {
                    return Ok(None);
                };
                let mut fields = response.split(|&b| b == 1);
                // XOAUTH2: user=NAME; OAUTHBEARER: the GS2 header n,a=NAME,
                let head = fields.next().unwrap_or_default();
                let user = head
                    .strip_prefix(b"user=")
                    .or_else(|| {
                        head.split(|&b| b == b',')
                            .find_map(|f| f.strip_prefix(b"a="))
                    })
                    .unwrap_or_default();
                let token = fields
                    .find_map(|f| f.strip_prefix(b"auth=Bearer "))
                    .unwrap_or_default();
                ok(user, token)
            }
            _ => None,
        }))
    }

    /// The decoded response to a `334` challenge (or the initial response);
    /// `None` after a reply ended the exchange.
    fn challenge(&mut self, prompt: &[u8], initial: Option<&str>) -> io::Result<Option<Vec<u8>>> {
        let text = match initial {
            Some(text) => text.to_owned(),
            None => {
                self.reply(&format!("334 {}", B64.encode(prompt)))?;
                match self.line(MAX_COMMAND_LINE)? {
                    Ok(Some(line)) => String::from_utf8_lossy(&line).into_owned(),
                    Ok(None) => return Ok(None),
                    Err(TooLong) => {
                        self.reply("500 5.5.2 Line too long")?;
                        return Ok(None);
                    }
                }
            }
        };
        if text == "*" {
            self.reply("501 5.7.0 Authentication cancelled")?;
            return Ok(None);
        }
        let text = if text == "=" { "" } else { text.as_str() };
        match B64.decode(text) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.reply("501 5.5.2 Invalid base64")?;
                Ok(None)
            }
        }
    }

    fn mail(&mut self, arg: &str) -> io::Result<()> {
        if self.helo.is_none() || self.mail.is_some() {
            return self.reply("503 5.5.1 Bad sequence of commands");
        }
        if self.options.tls == DemoTls::RequireStarttls && !self.tls {
            return self.reply("530 5.7.0 Must issue a STARTTLS command first");
        }
        if self.options.mechanism.is_some() && self.auth_user.is_none() {
            return self.reply("530 5.7.0 Authentication required");
        }
        let Some((address, params)) = path(arg, "FROM:") else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>");
        };
        self.mail = Some(Received {
            tls: self.tls,
            auth_user: self.auth_user.clone(),
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: address,
            mail_params: params,
            ..Received::default()
        });
        self.reply("250 2.1.0 Ok")
    }

    fn rcpt(&mut self, arg: &str) -> io::Result<()> {
        let Some(mail) = &mut self.mail else {
            return self.reply("503 5.5.1 Bad sequence of commands");
        };
        if mail.rcpt_to.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Too many recipients");
        }
        let Some((address, params)) = path(arg, "TO:") else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        if address.is_empty() {
            return self.reply("550 5.1.3 Empty recipient");
        }
        mail.rcpt_to.push(address);
        mail.rcpt_params.push(params);
        self.reply("250 2.1.5 Ok")
    }

    /// `false` when the connection must end.
    fn data(&mut self, messages: &Mutex<Vec<Received>>) -> io::Result<bool> {
        if self.mail.as_ref().is_none_or(|m| m.rcpt_to.is_empty()) {
            self.reply("503 5.5.1 Bad sequence of commands")?;
            return Ok(true);
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>")?;
        let mut data = Vec::new();
        let mut too_big = false;
        loop {
            let line = match self.line(MAX_DATA_LINE)? {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(false),
                Err(TooLong) => {
                    self.reply("500 5.5.2 Line too long")?;
                    return Ok(false);
                }
            };
            if line == b"." {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if data.len() + line.len() + 2 > MAX_MESSAGE {
                too_big = true;
                continue;
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        let Some(mut message) = self.mail.take() else {
            return Ok(true);
        };
        if too_big {
            self.reply("552 5.3.4 Message too big")?;
            return Ok(true);
        }
        message.data = data;
        let rcpts = message.rcpt_to.clone();
        let n = {
            let mut stored = messages.lock().unwrap_or_else(PoisonError::into_inner);
            stored.push(message);
            stored.len()
        };
        if self.options.lmtp {
            for rcpt in rcpts {
                self.reply(&format!("250 2.0.0 <{rcpt}> delivered"))?;
            }
        } else {
            self.reply(&format!("250 2.0.0 Ok: queued as {n}"))?;
        }
        Ok(true)
    }
}

/// `FROM:<addr> PARAMS` (or `TO:`): the address and the parameters.
fn path(arg: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (address, params) = rest.split_once('>')?;
    let params = params.split_whitespace().map(str::to_owned).collect();
    Some((address.to_owned(), params))
}
