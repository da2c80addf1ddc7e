//! `smtp-send`: a swaks-like command-line client built on `smtp-blocking`.
//!
//! The `smtp-send` binary's logic (feature `cli`), also compiled into
//! `smtp-blocking/tests/cli.rs`, which calls [`run`] in-process with its own
//! standard streams, environment and password prompt.

mod demo_server;
mod embedded;
mod exit;
mod message;
mod transcript;

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use smtp_blocking::{
    Auth, Client, CramMd5Auth, DsnNotify, DsnReturn, Envelope, Error, LoginAuth, OAuthBearer,
    Options, PlainAuth, SendReport, Timeouts, TlsPolicy, XOAuth2,
};
use smtp_sansio::{CommandKind, Domain, Error as SmtpError, Mailbox, UsageError, escape_controls};

use embedded::Embedded;
pub(crate) use exit::Exit;
use message::Progress;
use transcript::Transcript;

/// The environment variable holding the password (or OAuth token).
pub(crate) const PASSWORD_ENV: &str = "SMTP_PASSWORD";

/// Send one message over SMTP (or LMTP) and report what the server said.
///
/// Without --server, starts an in-process loopback server with a certificate
/// generated on the fly and sends a test message through it with STARTTLS,
/// AUTH PLAIN and PIPELINING, printing the transcript and the message as the
/// server received it.
///
/// The password for --auth comes from --password-file, else the
/// SMTP_PASSWORD environment variable, else a prompt on the terminal; it is
/// never taken from the command line, and the transcript redacts AUTH.
#[derive(Debug, Parser)]
#[command(name = "smtp-send", version, after_help = exit::TABLE)]
pub(crate) struct Args {
    /// The server, as HOST or HOST:PORT (an IPv6 address with a port in
    /// brackets: `[::1]:2525`). Without
    /// a port: 465 with --tls implicit, else 587 with --auth (submission),
    /// else 25. Without --server: the embedded demo server.
    #[arg(long, value_name = "HOST[:PORT]")]
    server: Option<String>,
    /// How to use TLS: STARTTLS and fail if not offered, TLS from the first
    /// byte (port 465), STARTTLS when offered, or never.
    #[arg(long, value_enum, default_value_t = TlsMode::Starttls)]
    tls: TlsMode,
    /// Trust only the CA certificates in this PEM file (default: the Mozilla
    /// roots from webpki-roots). Certificate verification is always on.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Authenticate with this SASL mechanism (needs --user).
    #[arg(long, value_enum, value_name = "MECH")]
    auth: Option<Mechanism>,
    /// The user name for --auth.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Read the password (or OAuth token) from the first line of this file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The envelope sender (MAIL FROM); "" for the null sender.
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// An envelope recipient (RCPT TO); repeat for more.
    #[arg(long, value_name = "ADDR")]
    to: Vec<String>,
    /// Send this file as the message ("-": standard input), adding Date and
    /// Message-ID when its header section has none, and the --header lines
    /// (each replacing the message's headers of that name).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["subject", "body", "html", "attach"])]
    data: Option<PathBuf>,
    /// The subject of the composed message.
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Add a header ("Name: value"; repeatable; replaces the composed
    /// message's From, To, Subject, Date or Message-ID, or a --data
    /// message's headers of the same name; non-ASCII values are RFC 2047
    /// encoded).
    #[arg(long, value_name = "HEADER")]
    header: Vec<String>,
    /// The text body of the composed message (which gets Date and
    /// Message-ID headers).
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    /// Add an HTML version of the body, read from this UTF-8 file
    /// (multipart/alternative beside the text).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Attach a file (repeatable). Its MIME type comes from the extension
    /// (application/octet-stream when unknown) unless given after a colon,
    /// as in --attach report.bin:application/pdf.
    #[arg(long, value_name = "FILE[:TYPE]")]
    attach: Vec<String>,
    /// The name sent with EHLO (or LHLO).
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    ehlo: String,
    /// Send MAIL, RCPT and DATA in one write when the server offers
    /// PIPELINING.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pipelining: Switch,
    /// Send the body with BDAT when the server offers CHUNKING.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    chunking: Switch,
    /// DSN: return the full message or only its headers in a bounce.
    #[arg(long, value_enum, value_name = "WHAT")]
    dsn_ret: Option<DsnRet>,
    /// DSN: the envelope identifier (ENVID).
    #[arg(long, value_name = "ID")]
    dsn_envid: Option<String>,
    /// DSN: when to notify, "never" or a comma list of success, failure,
    /// delay (NOTIFY, for every recipient).
    #[arg(long, value_name = "WHEN", value_parser = parse_notify)]
    dsn_notify: Option<DsnNotify>,
    /// DSN: send each recipient as its own original recipient
    /// (ORCPT=rfc822;ADDR).
    #[arg(long)]
    dsn_orcpt: bool,
    /// Ask that the message travel only over TLS (RFC 8689 REQUIRETLS).
    #[arg(long)]
    requiretls: bool,
    /// Send only if every recipient is accepted (default: deliver to those
    /// accepted and report the others).
    #[arg(long)]
    require_all_recipients: bool,
    /// Speak LMTP (LHLO; one reply per recipient after the message).
    #[arg(long)]
    lmtp: bool,
    /// Limit every wait (connect, TLS handshake, each reply, each write) to
    /// this many seconds (default: RFC 5321's per-command timeouts).
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Print nothing but errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Print the session transcript (C:/S: lines, AUTH payloads redacted).
    #[arg(short, long)]
    verbose: bool,
}

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TlsMode {
    /// STARTTLS, failing if the server does not offer it.
    Starttls,
    /// TLS from the first byte (RFC 8314, port 465).
    Implicit,
    /// No TLS.
    None,
    /// STARTTLS when offered, plaintext otherwise.
    Opportunistic,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mechanism {
    /// RFC 4616; only over TLS or to localhost.
    Plain,
    /// The obsolete LOGIN; only over TLS or to localhost.
    Login,
    /// RFC 2195; also without TLS (the password never crosses the wire).
    CramMd5,
    /// Google/Microsoft OAuth 2.0 (the password is the access token); only
    /// over TLS or to localhost.
    Xoauth2,
    /// RFC 7628 (the password is the bearer token); only over TLS or to
    /// localhost.
    Oauthbearer,
    /// RFC 7677; the server must prove it knows the password too.
    #[value(name = "scram-sha-256")]
    ScramSha256,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::Xoauth2 => "XOAUTH2",
            Self::Oauthbearer => "OAUTHBEARER",
            Self::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    fn build(self, user: &str, password: &str, host: &str, port: u16) -> Box<dyn Auth> {
        match self {
            Self::Plain => Box::new(PlainAuth::new("", user, password, host)),
            Self::Login => Box::new(LoginAuth::new(user, password, host)),
            Self::CramMd5 => Box::new(CramMd5Auth::new(user, password)),
            Self::Xoauth2 => Box::new(XOAuth2::new(user, password)),
            Self::Oauthbearer => Box::new(OAuthBearer::new(user, password, host, port)),
            Self::ScramSha256 => Box::new(smtp_blocking::scram_sha256(user, password)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DsnRet {
    /// RET=FULL.
    Full,
    /// RET=HDRS.
    Hdrs,
}

fn parse_notify(s: &str) -> Result<DsnNotify, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(DsnNotify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for word in s.split(',') {
        match word.trim().to_ascii_lowercase().as_str() {
            "success" => success = true,
            "failure" => failure = true,
            "delay" => delay = true,
            _ => {
                return Err("expected \"never\" or a comma list of success, failure, delay".into());
            }
        }
    }
    Ok(DsnNotify::On {
        success,
        failure,
        delay,
    })
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| "expected a number of seconds")?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err("expected more than 0 and at most 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A shared, line-oriented output stream (stdout or stderr).
#[derive(Clone)]
pub(crate) struct Out(Arc<Mutex<Box<dyn Write + Send>>>);

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Out")
    }
}

impl Out {
    pub(crate) fn new(w: impl Write + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(w))))
    }

    /// Writes `text` and a newline, with control characters escaped
    /// (`\x1b`, `\u{85}`, ... as [`smtp_sansio::escape_controls`] does): a
    /// line may quote the server (a reply, an error, the transcript), and a
    /// hostile server must not drive the terminal (set its title, clear it,
    /// write the clipboard, reorder text). Output errors (a closed pipe) are
    /// ignored: they must not change the exit code of a send.
    pub(crate) fn line(&self, text: &str) {
        let text = escape_controls(text);
        let mut w = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(w, "{text}").and_then(|()| w.flush());
    }

    /// Writes `text` as is: only for the program's own text (help, the
    /// progress line, the demo's own message), never for server text.
    pub(crate) fn write_str(&self, text: &str) {
        let mut w = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
    }
}

/// Asks for the password on the terminal, without echo.
pub(crate) type Prompt = Box<dyn FnMut(&str) -> io::Result<String>>;

/// What the program reads and writes besides the network.
pub(crate) struct Io {
    pub(crate) stdin: Box<dyn Read + Send>,
    pub(crate) stdout: Out,
    pub(crate) stderr: Out,
    /// Whether stderr is a terminal (enables the progress line).
    pub(crate) stderr_is_terminal: bool,
    /// The value of `SMTP_PASSWORD`, if set.
    pub(crate) env_password: Option<String>,
    pub(crate) prompt: Prompt,
}

impl Io {
    /// The process's own streams, environment and terminal.
    pub(crate) fn process() -> Self {
        Self {
            stdin: Box::new(io::stdin()),
            stdout: Out::new(io::stdout()),
            stderr: Out::new(io::stderr()),
            stderr_is_terminal: io::stderr().is_terminal(),
            env_password: std::env::var(PASSWORD_ENV).ok(),
            prompt: Box::new(|p| rpassword::prompt_password(p)),
        }
    }
}

/// The binary's `main`.
pub(crate) fn main() -> ExitCode {
    ExitCode::from(run(std::env::args_os(), Io::process()).code())
}

/// Parses `args` (the first is the program name) and runs.
pub(crate) fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>, io: Io) -> Exit {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    io.stdout.write_str(&text);
                    Exit::Ok
                }
                _ => {
                    io.stderr.write_str(&text);
                    Exit::Usage
                }
            };
        }
    };
    let stderr = io.stderr.clone();
    match Session::new(args, io).and_then(Session::run) {
        Ok(()) => Exit::Ok,
        Err(failure) => {
            stderr.line(&format!("smtp-send: {}", failure.message));
            failure.exit
        }
    }
}

/// A failure: what to print and how to exit.
#[derive(Debug)]
pub(crate) struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
        }
    }

    fn input(path: &Path, e: impl fmt::Display) -> Self {
        Self {
            exit: Exit::NoInput,
            message: format!("{}: {e}", path.display()),
        }
    }
}

/// One run, after parsing.
struct Session {
    args: Args,
    io: Io,
    /// The embedded server, when no --server was given.
    embedded: Option<Embedded>,
    /// What to connect to: `host:port` or `[v6]:port`.
    server: String,
    /// Its host (the name TLS verifies and PLAIN/LOGIN check) and port.
    host: String,
    port: u16,
    from: String,
    to: Vec<String>,
    auth: Option<(Mechanism, String, String)>,
}

impl Session {
    fn new(mut args: Args, mut io: Io) -> Result<Self, Failure> {
        let demo = args.server.is_none();
        let from = match args.from.take() {
            Some(from) => from,
            None if demo => "sender@example.com".to_owned(),
            None => return Err(Failure::usage("--from ADDR is required with --server")),
        };
        let to = match std::mem::take(&mut args.to) {
            to if !to.is_empty() => to,
            _ if demo => vec!["recipient@example.com".to_owned()],
            _ => return Err(Failure::usage("--to ADDR is required with --server")),
        };
        // The demo authenticates (PLAIN as "demo" with a random password
        // unless told otherwise); a real server only with --auth.
        let mechanism = match (args.auth, &args.user) {
            (Some(m), _) => Some(m),
            (None, _) if demo => Some(Mechanism::Plain),
            (None, Some(_)) => return Err(Failure::usage("--user needs --auth MECH")),
            (None, None) => None,
        };
        let auth = match mechanism {
            None => None,
            Some(m) => {
                let (user, password) = match &args.user {
                    Some(user) => (user.clone(), password(&args, &mut io, user)?),
                    None if demo => ("demo".to_owned(), demo_password()),
                    None => return Err(Failure::usage("--auth needs --user")),
                };
                Some((m, user, password))
            }
        };
        let (server, embedded) = match args.server.clone() {
            Some(server) => (server, None),
            None => {
                let (mech, user, pass) = match &auth {
                    Some((Mechanism::ScramSha256, _, _)) => {
                        return Err(Failure::usage(
                            "the embedded demo server does not speak SCRAM-SHA-256: \
                             give --server, or another --auth",
                        ));
                    }
                    Some((m, u, p)) => (Some(m.name()), u.as_str(), p.as_str()),
                    None => (None, "", ""),
                };
                let embedded =
                    Embedded::start(args.tls, args.lmtp, mech, user, pass).map_err(|e| {
                        Failure {
                            exit: Exit::Software,
                            message: format!("cannot start the embedded demo server: {e}"),
                        }
                    })?;
                (embedded.addr.clone(), Some(embedded))
            }
        };
        let (server, host, port) = server_address(&server, args.tls, auth.is_some())?;
        Ok(Self {
            args,
            io,
            embedded,
            server,
            host,
            port,
            from,
            to,
            auth,
        })
    }

    fn run(mut self) -> Result<(), Failure> {
        let verbose = self.args.verbose || (self.embedded.is_some() && !self.args.quiet);
        let options = self.options()?;
        let (envelope, message, size) = self.message()?;
        let progress_out =
            (self.io.stderr_is_terminal && !self.args.quiet).then(|| self.io.stderr.clone());
        let message = Progress::new(message, size, progress_out);

        if !self.args.quiet {
            if self.embedded.is_some() {
                self.io.stdout.line(
                    "smtp-send: no --server: started an in-process SMTP server on loopback \
                     with a certificate generated on the fly (trusted through its throw-away CA)",
                );
            }
            self.io
                .stdout
                .line(&format!("smtp-send: connecting to {}", self.server));
        }
        let transcript = Transcript::default();
        let echo = verbose.then(|| self.io.stdout.clone());
        let result = tracing::subscriber::with_default(transcript.subscriber(echo), || {
            self.session(options, &envelope, message)
        });
        match result {
            Ok((report, tls)) => {
                self.report(&report, tls.as_deref());
                if let Some(embedded) = self.embedded.take() {
                    if !self.args.quiet {
                        embedded.print_received(&self.io.stdout);
                    } else {
                        embedded.stop();
                    }
                }
                Ok(())
            }
            Err(e) => {
                if let Some(embedded) = self.embedded.take() {
                    embedded.stop();
                }
                let exit = Exit::from_error(&e);
                Err(Failure {
                    exit,
                    message: describe(&e, &self.to),
                })
            }
        }
    }

    /// The SMTP session itself: connect, EHLO, STARTTLS, AUTH, send, QUIT.
    fn session(
        &self,
        options: Options,
        envelope: &Envelope,
        message: impl Read,
    ) -> Result<(SendReport, Option<String>), Error> {
        let mut client = if self.args.tls == TlsMode::Implicit {
            Client::connect_tls_with(&self.server, options)?
        } else {
            Client::connect_with(&self.server, options)?
        };
        // EHLO (with --ehlo), STARTTLS as --tls says, AUTH if asked for.
        let mut auth = self.auth.as_ref().map(|(mechanism, user, password)| {
            mechanism.build(user, password, &self.host, self.port)
        });
        client.establish(auth.as_deref_mut())?;
        let tls = client.tls_connection_state().map(|s| {
            let version = s.protocol_version.map(|v| format!("{v:?}"));
            let suite = s.cipher_suite.map(|c| format!("{:?}", c.suite()));
            format!(
                "{} {}, certificate verified for {}",
                version.as_deref().unwrap_or("?"),
                suite.as_deref().unwrap_or("?"),
                s.server_name
            )
        });
        let report = client.send(envelope, message)?;
        if let Err(e) = client.quit() {
            // The message is already accepted; a failed QUIT changes nothing.
            self.io
                .stderr
                .line(&format!("smtp-send: warning: QUIT failed: {e}"));
        }
        Ok((report, tls))
    }

    fn options(&self) -> Result<Options, Failure> {
        let mut options = Options::default();
        if let Some(t) = self.args.timeout {
            options.config.timeouts = Timeouts::uniform(t);
        }
        options.config.local_name = Domain::new(self.args.ehlo.as_str())
            .map_err(|e| Failure::usage(format!("--ehlo: {e}")))?;
        options.config.tls_policy = match self.args.tls {
            TlsMode::Starttls => TlsPolicy::Required,
            TlsMode::Opportunistic => TlsPolicy::Opportunistic,
            TlsMode::None | TlsMode::Implicit => TlsPolicy::Disabled,
        };
        options.tls_config = Some(match (&self.embedded, &self.args.ca) {
            (_, Some(path)) => tls_config_from_pem(path)?,
            (Some(embedded), None) => embedded.tls_config.clone(),
            (None, None) => smtp_blocking::default_tls_config(),
        });
        options.config.pipelining = self.args.pipelining == Switch::On;
        options.config.prefer_chunking = self.args.chunking == Switch::On;
        options.config.lmtp = self.args.lmtp;
        // The CLI's transcript comes from the `tracing` lines this turns on.
        options.config.transcript = true;
        Ok(options)
    }

    /// The envelope, the message reader and its size when known.
    #[allow(clippy::type_complexity)]
    fn message(&mut self) -> Result<(Envelope, Box<dyn Read + Send>, Option<u64>), Failure> {
        let mut envelope =
            Envelope::new(&self.from, &self.to).map_err(|e| Failure::usage(format!("{e}")))?;
        let domain = self
            .from
            .rsplit_once('@')
            .map_or(self.args.ehlo.as_str(), |(_, d)| d)
            .to_owned();
        let (reader, size): (Box<dyn Read + Send>, Option<u64>) = match &self.args.data {
            Some(path) => {
                let (mut file, size): (Box<dyn Read + Send>, Option<u64>) =
                    if path.as_os_str() == "-" {
                        let stdin = std::mem::replace(&mut self.io.stdin, Box::new(io::empty()));
                        (stdin, None)
                    } else {
                        let file = File::open(path).map_err(|e| Failure::input(path, e))?;
                        let size = file.metadata().map_err(|e| Failure::input(path, e))?.len();
                        (Box::new(file), Some(size))
                    };
                // The header section, completed; the rest follows as is.
                let data = message::data_headers(&mut file, &self.args.header, &domain, path)?;
                let size =
                    size.map(|s| s.saturating_sub(data.replaced as u64) + data.head.len() as u64);
                let head = io::Cursor::new(data.head).chain(io::Cursor::new(data.rest));
                (Box::new(head.chain(file)), size)
            }
            None => {
                let text = message::compose(&message::Compose {
                    from: &self.from,
                    to: &self.to,
                    headers: &self.args.header,
                    subject: self.args.subject.as_deref(),
                    body: self.args.body.as_deref(),
                    html: self.args.html.as_deref(),
                    attach: &self.args.attach,
                    id_domain: &domain,
                })?;
                let size = text.len() as u64;
                (Box::new(io::Cursor::new(text)), Some(size))
            }
        };
        let params = &mut envelope.params;
        params.size = size;
        params.ret = self.args.dsn_ret.map(|r| match r {
            DsnRet::Full => DsnReturn::Full,
            DsnRet::Hdrs => DsnReturn::Headers,
        });
        params.envid = self.args.dsn_envid.clone();
        params.requiretls = self.args.requiretls;
        for (mailbox, rcpt) in &mut envelope.to {
            rcpt.notify = self.args.dsn_notify;
            if self.args.dsn_orcpt {
                rcpt.orcpt = Some(Mailbox::clone(mailbox));
            }
        }
        envelope.require_all_recipients = self.args.require_all_recipients;
        Ok((envelope, reader, size))
    }

    fn report(&self, report: &SendReport, tls: Option<&str>) {
        for r in report.refused() {
            let why = match (&r.rcpt, &r.delivery) {
                (Some(Err(e)), _) | (Some(Ok(_)), Some(Err(e))) => e.to_string(),
                _ => "refused".to_owned(),
            };
            self.io.stderr.line(&format!(
                "smtp-send: not delivered to <{}>: {why}",
                r.address.as_str()
            ));
        }
        if self.args.quiet {
            return;
        }
        let out = &self.io.stdout;
        if let Some(tls) = tls {
            out.line(&format!("smtp-send: TLS: {tls}"));
        }
        for r in report.accepted() {
            let reply = match (&r.rcpt, &r.delivery) {
                (_, Some(Ok(reply))) | (Some(Ok(reply)), None) => reply.to_string(),
                _ => String::new(),
            };
            out.line(&format!(
                "smtp-send: accepted for <{}>: {reply}",
                r.address.as_str()
            ));
        }
        out.line(&format!("smtp-send: sent: {}", report.reply));
    }
}

/// The error, with the reply's text when the server refused, and the
/// address of each refused recipient (`to`, in the order of the RCPTs).
fn describe(e: &Error, to: &[String]) -> String {
    if let Some(stage) = e.timeout_stage() {
        return format!("timed out waiting for the {stage}");
    }
    let list = || format!("<{}>", to.join(">, <"));
    match e {
        Error::Smtp(SmtpError::NoRecipientAccepted(n)) => {
            let rcpts: Vec<_> = n
                .refusals
                .iter()
                .filter(|r| r.command == CommandKind::Rcpt)
                .collect();
            if rcpts.len() == to.len() {
                // Every RCPT was refused: the refusals are the recipients'
                // in order.
                let each: Vec<String> = to
                    .iter()
                    .zip(&rcpts)
                    .map(|(address, r)| format!("<{address}>: {}", r.reply))
                    .collect();
                format!(
                    "every recipient was refused, nothing sent: {}",
                    each.join("; ")
                )
            } else {
                format!("every recipient ({}) was refused: {e}", list())
            }
        }
        Error::Smtp(SmtpError::RecipientRefused(r)) => match to {
            [one] => format!("recipient <{one}> refused: {}; nothing sent", r.reply),
            _ => format!(
                "a recipient (one of {}) was refused: {}; nothing sent \
                 (--require-all-recipients)",
                list(),
                r.reply
            ),
        },
        Error::Smtp(SmtpError::Usage(UsageError::TlsModeMismatch { port, implicit_tls })) => {
            tls_mode_hint(*port, *implicit_tls)
        }
        _ => e.to_string(),
    }
}

/// What to do when the TLS mode does not fit the port.
fn tls_mode_hint(port: u16, implicit_tls: bool) -> String {
    if implicit_tls {
        format!(
            "port {port} expects plaintext with STARTTLS, not TLS from the first byte: \
             drop --tls implicit (or use port 465)"
        )
    } else {
        format!("port {port} is SMTPS (TLS from the first byte, RFC 8314): use --tls implicit")
    }
}

/// `--server`, with the mode's default port when it has none: the address
/// to connect to, its host and its port. Refuses a port whose TLS mode is
/// the other one (465 without `--tls implicit`, 25 or 587 with it).
pub(crate) fn server_address(
    server: &str,
    tls: TlsMode,
    auth: bool,
) -> Result<(String, String, u16), Failure> {
    let bad = |why: &str| Failure::usage(format!("--server {server:?}: {why}"));
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, rest) = rest
            .split_once(']')
            .ok_or_else(|| bad("no ']' after the IPv6 address"))?;
        match rest {
            "" => (host, None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("expected :PORT after ']'")),
            },
        }
    } else {
        match server.split_once(':') {
            // A bare IPv6 address: no port.
            Some(_) if server.matches(':').count() > 1 => (server, None),
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
        None if tls == TlsMode::Implicit => 465,
        None if auth => 587,
        None => 25,
    };
    let implicit = tls == TlsMode::Implicit;
    if (port == 465 && !implicit) || (implicit && matches!(port, 25 | 587)) {
        return Err(Failure::usage(tls_mode_hint(port, implicit)));
    }
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((addr, host.to_owned(), port))
}

/// The password from --password-file, SMTP_PASSWORD or the terminal.
fn password(args: &Args, io: &mut Io, user: &str) -> Result<String, Failure> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| Failure::input(path, e))?;
        let first = text.lines().next().unwrap_or("");
        return Ok(first.to_owned());
    }
    if let Some(p) = &io.env_password {
        return Ok(p.clone());
    }
    // The prompt's error says only that there is no terminal to ask on.
    (io.prompt)(&format!("Password for {user}: ")).map_err(|_| {
        Failure::usage(format!(
            "no password for {user}: no terminal to ask on; \
             use --password-file FILE or set {PASSWORD_ENV}"
        ))
    })
}

/// A random password for the embedded server's demo account.
fn demo_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("demo-{:016x}", h.finish())
}

/// A TLS config trusting only the certificates in the PEM file at `path`.
fn tls_config_from_pem(path: &Path) -> Result<Arc<ClientConfig>, Failure> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| Failure::input(path, e))?;
    for cert in certs {
        let cert = cert.map_err(|e| Failure::input(path, e))?;
        roots.add(cert).map_err(|e| Failure::input(path, e))?;
    }
    if roots.is_empty() {
        return Err(Failure::input(path, "no certificate in the file"));
    }
    Ok(smtp_blocking::tls_config_with_roots(roots))
}
