//! The interop servers started by `tests/interop/start-servers.sh`, found
//! through the `SMTP_*` variables of `STATE_DIR/env`.
//!
//! A missing server fails the test when `SMTP_INTEROP=required` (CI) and is
//! skipped with a loud message otherwise (a developer machine without the
//! servers).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Which server (and which of its variants) a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// aiosmtpd: STARTTLS and AUTH PLAIN/LOGIN required, SMTPUTF8, SIZE.
    Aiosmtpd,
    /// nodemailer smtp-server with STARTTLS.
    Nodemailer,
    /// nodemailer smtp-server with implicit TLS.
    NodemailerTls,
    /// nodemailer smtp-server speaking LMTP.
    NodemailerLmtp,
    /// nodemailer smtp-server closing connections idle for 1 s (with 421).
    NodemailerIdle,
    /// The private Postfix smtpd.
    Postfix,
    /// Postfix smtp-sink (SMTP), with dump files.
    Sink,
    /// Postfix smtp-sink -L (LMTP), with dump files.
    SinkLmtp,
    /// A fault-injecting smtp-sink (no dump files).
    SinkFault(&'static str),
    /// The private Exim 4 (exim4-daemon-light, `exim -C`).
    Exim,
    /// Dovecot's submission service, relaying to its own nodemailer
    /// smtp-server (whose spool is read).
    DovecotSubmission,
    /// Dovecot's LMTP service, delivering to one maildir per recipient.
    DovecotLmtp,
    /// The private OpenSMTPD (Debian's opensmtpd, `smtpd -f`), delivering
    /// each recipient's copy through an mda.
    Opensmtpd,
    /// Haraka (npm) with a private config directory and a queue plugin
    /// writing the spool.
    Haraka,
}

impl Kind {
    /// The environment variable holding the server's `host:port`.
    pub(crate) fn var(self) -> &'static str {
        match self {
            Kind::Aiosmtpd => "SMTP_AIOSMTPD",
            Kind::Nodemailer => "SMTP_NODEMAILER",
            Kind::NodemailerTls => "SMTP_NODEMAILER_TLS",
            Kind::NodemailerLmtp => "SMTP_NODEMAILER_LMTP",
            Kind::NodemailerIdle => "SMTP_NODEMAILER_IDLE",
            Kind::Postfix => "SMTP_POSTFIX",
            Kind::Sink => "SMTP_SINK",
            Kind::SinkLmtp => "SMTP_SINK_LMTP",
            Kind::SinkFault(var) => var,
            Kind::Exim => "SMTP_EXIM",
            Kind::DovecotSubmission => "SMTP_DOVECOT_SUBMISSION",
            Kind::DovecotLmtp => "SMTP_DOVECOT_LMTP",
            Kind::Opensmtpd => "SMTP_OPENSMTPD",
            Kind::Haraka => "SMTP_HARAKA",
        }
    }

    /// The spool variable, when the server stores messages.
    fn spool_var(self) -> Option<&'static str> {
        Some(match self {
            Kind::Aiosmtpd => "SMTP_AIOSMTPD_SPOOL",
            Kind::Nodemailer => "SMTP_NODEMAILER_SPOOL",
            Kind::NodemailerTls => "SMTP_NODEMAILER_TLS_SPOOL",
            Kind::NodemailerLmtp => "SMTP_NODEMAILER_LMTP_SPOOL",
            Kind::NodemailerIdle => "SMTP_NODEMAILER_IDLE_SPOOL",
            Kind::Postfix => "SMTP_POSTFIX_SPOOL",
            Kind::Sink => "SMTP_SINK_SPOOL",
            Kind::SinkLmtp => "SMTP_SINK_LMTP_SPOOL",
            Kind::SinkFault(_) => return None,
            Kind::Exim => "SMTP_EXIM_SPOOL",
            Kind::DovecotSubmission => "SMTP_DOVECOT_SUBMISSION_SPOOL",
            Kind::DovecotLmtp => "SMTP_DOVECOT_LMTP_SPOOL",
            Kind::Opensmtpd => "SMTP_OPENSMTPD_SPOOL",
            Kind::Haraka => "SMTP_HARAKA_SPOOL",
        })
    }

    /// STARTTLS is offered.
    pub(crate) fn starttls(self) -> bool {
        matches!(
            self,
            Kind::Aiosmtpd
                | Kind::Nodemailer
                | Kind::NodemailerLmtp
                | Kind::NodemailerIdle
                | Kind::Postfix
                | Kind::Exim
                | Kind::DovecotSubmission
                | Kind::DovecotLmtp
                | Kind::Opensmtpd
                | Kind::Haraka
        )
    }

    /// The connection is TLS from the start (RFC 8314).
    pub(crate) fn implicit_tls(self) -> bool {
        self == Kind::NodemailerTls
    }

    /// The server speaks LMTP.
    pub(crate) fn lmtp(self) -> bool {
        matches!(
            self,
            Kind::NodemailerLmtp | Kind::SinkLmtp | Kind::DovecotLmtp
        )
    }

    /// The AUTH mechanisms the server really checks (after TLS). smtp-sink
    /// advertises a fake AUTH, so it has none.
    pub(crate) fn mechanisms(self) -> &'static [Mech] {
        match self {
            Kind::Aiosmtpd => &[Mech::Plain, Mech::Login],
            Kind::Nodemailer
            | Kind::NodemailerTls
            | Kind::NodemailerLmtp
            | Kind::NodemailerIdle => &[Mech::Plain, Mech::Login, Mech::CramMd5, Mech::XOAuth2],
            Kind::Postfix => &[Mech::Plain, Mech::Login, Mech::CramMd5],
            Kind::Exim => &[Mech::Plain, Mech::Login, Mech::CramMd5],
            Kind::Opensmtpd => &[Mech::Plain, Mech::Login],
            Kind::Haraka => &[Mech::Plain, Mech::Login, Mech::CramMd5],
            Kind::DovecotSubmission => &[
                Mech::Plain,
                Mech::Login,
                Mech::CramMd5,
                Mech::ScramSha1,
                Mech::ScramSha256,
            ],
            Kind::Sink | Kind::SinkLmtp | Kind::SinkFault(_) | Kind::DovecotLmtp => &[],
        }
    }

    /// The stored format is a JSON envelope plus the exact bytes (aiosmtpd,
    /// nodemailer, Postfix); otherwise an smtp-sink dump.
    pub(crate) fn json_spool(self) -> bool {
        !matches!(
            self,
            Kind::Sink | Kind::SinkLmtp | Kind::SinkFault(_) | Kind::DovecotLmtp
        )
    }

    /// Dovecot's LMTP stores into one maildir per recipient.
    pub(crate) fn maildir_spool(self) -> bool {
        self == Kind::DovecotLmtp
    }

    /// Postfix, Exim and OpenSMTPD store messages asynchronously (after
    /// their queue delivered them).
    pub(crate) fn async_spool(self) -> bool {
        matches!(self, Kind::Postfix | Kind::Exim | Kind::Opensmtpd)
    }

    /// Each recipient's copy is stored on its own (Dovecot's maildirs,
    /// OpenSMTPD's one mda run per recipient): the recipients of a message
    /// are collected from several files, in no particular order.
    pub(crate) fn per_recipient_spool(self) -> bool {
        matches!(self, Kind::DovecotLmtp | Kind::Opensmtpd)
    }
}

/// An AUTH mechanism, built per session by the adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mech {
    /// RFC 4616.
    Plain,
    /// The de-facto LOGIN.
    Login,
    /// RFC 2195.
    CramMd5,
    /// Google's XOAUTH2 (the password is the token).
    XOAuth2,
    /// RFC 5802.
    ScramSha1,
    /// RFC 7677.
    ScramSha256,
}

impl Mech {
    /// The name as in EHLO.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
            Mech::CramMd5 => "CRAM-MD5",
            Mech::XOAuth2 => "XOAUTH2",
            Mech::ScramSha1 => "SCRAM-SHA-1",
            Mech::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism object for `host` (the name the client connected to,
    /// which PLAIN and LOGIN check, as Go does).
    pub(crate) fn build(
        self,
        user: &str,
        secret: &str,
        host: &str,
    ) -> Box<dyn smtp_sansio::Auth + Send> {
        match self {
            Mech::Plain => Box::new(smtp_sansio::PlainAuth::new("", user, secret, host)),
            Mech::Login => Box::new(smtp_sansio::LoginAuth::new(user, secret, host)),
            Mech::CramMd5 => Box::new(smtp_sansio::CramMd5Auth::new(user, secret)),
            Mech::XOAuth2 => Box::new(smtp_sansio::XOAuth2::new(user, secret)),
            // The adapters' constructors: a fresh nonce from the OS per
            // exchange.
            Mech::ScramSha1 => Box::new(smtp_blocking::scram_sha1(user, secret)),
            Mech::ScramSha256 => Box::new(smtp_blocking::scram_sha256(user, secret)),
        }
    }
}

/// A running server.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// Which one.
    pub(crate) kind: Kind,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// Where it stores messages.
    pub(crate) spool: Option<PathBuf>,
}

impl Server {
    /// The host part of the address: the name TLS verifies and PLAIN/LOGIN
    /// check.
    pub(crate) fn host(&self) -> &str {
        self.addr.rsplit_once(':').map_or(&self.addr, |(h, _)| h)
    }

    /// How long to wait for a stored message.
    pub(crate) fn spool_wait(&self) -> Duration {
        if self.kind.async_spool() {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(5)
        }
    }
}

/// Settings shared by every server.
#[derive(Debug)]
pub(crate) struct Env {
    /// `SMTP_USER`.
    pub(crate) user: String,
    /// `SMTP_PASSWORD`.
    pub(crate) password: String,
    /// A rustls config trusting only `SMTP_CA`.
    pub(crate) tls: Arc<ClientConfig>,
    /// `SMTP_SIZE_LIMIT`.
    pub(crate) size_limit: u64,
}

/// `SMTP_INTEROP=required`: a missing server is a failure, not a skip.
pub(crate) fn required() -> bool {
    std::env::var("SMTP_INTEROP").is_ok_and(|v| v == "required")
}

fn missing(what: &str, test: &str) {
    use std::io::Write;
    if required() {
        panic!(
            "{what} is not set, but SMTP_INTEROP=required: the interop server is missing \
             (tests/interop/start-servers.sh STATE_DIR writes STATE_DIR/env)"
        );
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of
    // passing tests, and a skip must not go unnoticed.
    static BANNER: std::sync::Once = std::sync::Once::new();
    let mut err = std::io::stderr().lock();
    BANNER.call_once(|| {
        let _ = writeln!(
            err,
            "\n\
             ************************************************************************\n\
             *** INTEROP SERVERS MISSING: interop tests are SKIPPED, not run.\n\
             *** Start them: tests/interop/install.sh; \
             tests/interop/start-servers.sh DIR;\n\
             *** set -a; . DIR/env; set +a   (CI sets SMTP_INTEROP=required,\n\
             *** which turns every skip into a failure)\n\
             ************************************************************************"
        );
    });
    let _ = writeln!(err, "*** SKIPPED interop test {test}: {what} is not set");
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The shared settings, or `None` (after the skip message) when the env file
/// was not sourced.
pub(crate) fn env(test: &str) -> Option<&'static Env> {
    static ENV: OnceLock<Option<Env>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let (Some(user), Some(password), Some(ca)) =
            (var("SMTP_USER"), var("SMTP_PASSWORD"), var("SMTP_CA"))
        else {
            return None;
        };
        let pem = std::fs::read(&ca).unwrap_or_else(|e| panic!("SMTP_CA={ca}: {e}"));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.unwrap_or_else(|e| panic!("SMTP_CA={ca}: {e:?}"));
            roots.add(cert).expect("CA certificate accepted by rustls");
        }
        assert!(!roots.is_empty(), "SMTP_CA={ca} holds no certificate");
        let size_limit = var("SMTP_SIZE_LIMIT")
            .map_or(10 * 1024 * 1024, |v| v.parse().expect("SMTP_SIZE_LIMIT"));
        Some(Env {
            user,
            password,
            tls: smtp_blocking::tls_config_with_roots(roots),
            size_limit,
        })
    });
    if env.is_none() {
        missing("SMTP_USER/SMTP_PASSWORD/SMTP_CA", test);
    }
    env.as_ref()
}

/// The server of `kind`, or `None` (after the skip message) when its
/// variable is missing on a developer machine. Panics under
/// `SMTP_INTEROP=required`.
pub(crate) fn get(kind: Kind, test: &str) -> Option<(Server, &'static Env)> {
    let Some(addr) = var(kind.var()) else {
        missing(kind.var(), test);
        return None;
    };
    let env = env(test)?;
    let spool = match kind.spool_var() {
        None => None,
        Some(v) => match var(v) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => {
                missing(v, test);
                return None;
            }
        },
    };
    Some((Server { kind, addr, spool }, env))
}
