//! What a server offers and how much it takes: one [`ServerConfig`] shared
//! by every connection.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::time::Duration;

/// What to do with a bare LF or a bare CR in a message body sent by DATA
/// (RFC 5321 §2.3.8: lines end in CRLF, and "bare" CR or LF are not line
/// ends).
///
/// Either way only `CRLF . CRLF` ends the message: a `\n.\n` never does,
/// which is the receiving side of the SMTP smuggling defence (a server that
/// ends the message where the upstream did not would read the rest as
/// commands of the attacker's choosing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLineEnding {
    /// Refuse the message (`550 5.6.0`) once it has ended; the session goes
    /// on. The default: a correct client never sends one.
    #[default]
    Refuse,
    /// Turn every bare LF and bare CR into CRLF in the body the application
    /// sees. A line after a bare line ending is never a dot-stuffed line nor
    /// the end of the message.
    Normalize,
}

/// The SASL mechanisms a server can verify itself (the application checks
/// the credentials it is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMechanism {
    /// PLAIN (RFC 4616).
    Plain,
    /// LOGIN (the de-facto `334 VXNlcm5hbWU6` exchange).
    Login,
    /// CRAM-MD5 (RFC 2195): needs a per-connection nonce
    /// ([`ConnectionInfo::nonce`](crate::server::ConnectionInfo)); not
    /// offered without one.
    CramMd5,
    /// XOAUTH2 (Google's): a user name and an OAuth 2.0 bearer token.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): the same, in the GS2 framing.
    OAuthBearer,
    /// SCRAM-SHA-256 (RFC 7677): the session checks the proof against the
    /// keys the application stores (`ScramCredentials`); needs a
    /// per-connection nonce, as CRAM-MD5.
    #[cfg(feature = "scram")]
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    #[cfg(feature = "scram-sha1")]
    ScramSha1,
}

impl ServerMechanism {
    /// The name in EHLO and AUTH.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
            #[cfg(feature = "scram")]
            Self::ScramSha256 => "SCRAM-SHA-256",
            #[cfg(feature = "scram-sha1")]
            Self::ScramSha1 => "SCRAM-SHA-1",
        }
    }

    /// True for the mechanisms whose challenge needs the connection's
    /// nonce.
    pub(crate) fn needs_nonce(self) -> bool {
        match self {
            Self::CramMd5 => true,
            #[cfg(feature = "scram")]
            Self::ScramSha256 => true,
            #[cfg(feature = "scram-sha1")]
            Self::ScramSha1 => true,
            _ => false,
        }
    }

    /// The SCRAM hash, for the SCRAM mechanisms.
    #[cfg(feature = "scram")]
    pub fn scram_hash(self) -> Option<crate::scram::ScramHash> {
        match self {
            Self::ScramSha256 => Some(crate::scram::ScramHash::Sha256),
            #[cfg(feature = "scram-sha1")]
            Self::ScramSha1 => Some(crate::scram::ScramHash::Sha1),
            _ => None,
        }
    }
}

/// The bounds that keep a hostile client from costing more than a fixed
/// amount of memory or time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Longest command line, CRLF included. RFC 5321 §4.5.3.1.4 says 512
    /// and lets extensions raise it; ESMTP parameters do. Default 2048
    /// (Postfix's `line_length_limit`). A longer line is skipped and
    /// answered `500 5.5.6`.
    pub max_line_len: usize,
    /// Recipients per message. Default 100, RFC 5321 §4.5.3.1.8's minimum;
    /// more get `452 4.5.3`.
    pub max_recipients: usize,
    /// Largest message body, in octets after dot-unstuffing; advertised as
    /// `SIZE`. Default 35 MiB. A larger message is read to its end and
    /// refused `552 5.3.4`.
    pub max_message_size: u64,
    /// Refused or unknown commands before the session is closed with `421`.
    /// Default 20.
    pub max_errors: u32,
    /// Commands outside a mail transaction (NOOP, RSET, VRFY, HELP, EHLO…)
    /// before the session is closed with `421`: a client that never sends
    /// mail cannot hold the connection forever. Default 100.
    pub max_idle_commands: u32,
    /// Failed AUTH attempts before the session is closed with `421`.
    /// Default 3.
    pub max_auth_failures: u32,
    /// Unprocessed input held while the application has not answered an
    /// event; more closes the session. Default 1 MiB.
    pub max_buffered_input: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_line_len: 2048,
            max_recipients: 100,
            max_message_size: 35 * 1024 * 1024,
            max_errors: 20,
            max_idle_commands: 100,
            max_auth_failures: 3,
            max_buffered_input: 1024 * 1024,
        }
    }
}

/// The server's deadlines (RFC 5321 §4.5.3.2.7: "at least 5 minutes while
/// it is awaiting the next command").
///
/// A deadline starts when the wait starts and only progress moves it: a
/// command line dribbled a byte at a time cannot stretch the command
/// timeout, since only a whole command counts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerTimeouts {
    /// Waiting for the next command (or the next line of an AUTH
    /// exchange). Default 5 min.
    pub command: Duration,
    /// Waiting for more of a message body: reset by every block of body
    /// that arrives. Default 5 min.
    pub data_block: Duration,
    /// A whole message body, from its first byte to its end, however it
    /// trickles. Default 1 hour.
    pub message: Duration,
    /// Each write: a client that stops reading is dropped. Default 5 min.
    pub write: Duration,
    /// The TLS handshake. Default 30 s.
    pub tls_handshake: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(300),
            data_block: Duration::from_secs(300),
            message: Duration::from_secs(3600),
            write: Duration::from_secs(300),
            tls_handshake: Duration::from_secs(30),
        }
    }
}

/// What the server offers: the name it gives, the extensions in its EHLO
/// reply, authentication, TLS, limits and deadlines.
///
/// ```
/// use smtp_sansio::server::{ServerConfig, ServerMechanism};
///
/// let config = ServerConfig::new("mx.example.com")
///     .with_starttls(true)
///     .with_auth(&[ServerMechanism::Plain, ServerMechanism::Login])
///     .with_require_auth(true);
/// assert!(config.starttls);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The server's host name, in the greeting and the EHLO reply.
    pub hostname: String,
    /// Text after the host name in the greeting. Default `ESMTP`.
    pub greeting: String,
    /// Serve LMTP (RFC 2033): LHLO instead of EHLO, one reply per
    /// recipient after the message. Default off.
    pub lmtp: bool,
    /// Offer PIPELINING (RFC 2920). Default on. Replies are written in
    /// order and flushed when no further command is buffered.
    pub pipelining: bool,
    /// Offer 8BITMIME (RFC 6152). Default on.
    pub eight_bit_mime: bool,
    /// Offer CHUNKING (RFC 3030, BDAT). Default on.
    pub chunking: bool,
    /// Offer BINARYMIME (RFC 3030); needs `chunking`. Default on.
    pub binary_mime: bool,
    /// Offer SMTPUTF8 (RFC 6531). Default on.
    pub smtputf8: bool,
    /// Offer DSN (RFC 3461): its parameters are parsed and handed to the
    /// application, which owes the notifications. Default off.
    pub dsn: bool,
    /// Offer ENHANCEDSTATUSCODES (RFC 2034) and put codes in every reply.
    /// Default on.
    pub enhanced_status_codes: bool,
    /// Offer REQUIRETLS (RFC 8689) over TLS. Default off.
    pub requiretls: bool,
    /// Offer STARTTLS (RFC 3207); the driver must have a TLS configuration.
    /// Default off.
    pub starttls: bool,
    /// SASL mechanisms offered (RFC 4954). Default none.
    pub auth_mechanisms: Vec<ServerMechanism>,
    /// Offer and accept AUTH without TLS. Default off: passwords travel
    /// only encrypted (AUTH before STARTTLS gets `538 5.7.11`).
    pub auth_without_tls: bool,
    /// Refuse MAIL until the client has authenticated (`530 5.7.0`), as a
    /// submission server does. Default off.
    pub require_auth: bool,
    /// Refuse MAIL until TLS is up (`530 5.7.0`). Default off.
    pub require_tls: bool,
    /// Accept MAIL and RCPT parameters the session does not know, handing
    /// them to the application in `extra`. Default off (`555 5.5.4`).
    pub accept_unknown_params: bool,
    /// Bare CR or LF in a DATA body. Default [`BareLineEnding::Refuse`].
    pub bare_line_ending: BareLineEnding,
    /// The bounds.
    pub limits: ServerLimits,
    /// The deadlines.
    pub timeouts: ServerTimeouts,
}

impl ServerConfig {
    /// The defaults, under `hostname`.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            greeting: String::from("ESMTP"),
            lmtp: false,
            pipelining: true,
            eight_bit_mime: true,
            chunking: true,
            binary_mime: true,
            smtputf8: true,
            dsn: false,
            enhanced_status_codes: true,
            requiretls: false,
            starttls: false,
            auth_mechanisms: Vec::new(),
            auth_without_tls: false,
            require_auth: false,
            require_tls: false,
            accept_unknown_params: false,
            bare_line_ending: BareLineEnding::Refuse,
            limits: ServerLimits::default(),
            timeouts: ServerTimeouts::default(),
        }
    }

    /// Serve LMTP instead of SMTP.
    pub fn with_lmtp(mut self, on: bool) -> Self {
        self.lmtp = on;
        self
    }

    /// Offer STARTTLS.
    pub fn with_starttls(mut self, on: bool) -> Self {
        self.starttls = on;
        self
    }

    /// Offer these SASL mechanisms.
    pub fn with_auth(mut self, mechanisms: &[ServerMechanism]) -> Self {
        self.auth_mechanisms = mechanisms.to_vec();
        self
    }

    /// Refuse MAIL before AUTH.
    pub fn with_require_auth(mut self, on: bool) -> Self {
        self.require_auth = on;
        self
    }

    /// Offer (or not) PIPELINING.
    pub fn with_pipelining(mut self, on: bool) -> Self {
        self.pipelining = on;
        self
    }

    /// Offer (or not) CHUNKING and BINARYMIME.
    pub fn with_chunking(mut self, on: bool) -> Self {
        self.chunking = on;
        self.binary_mime = on;
        self
    }

    /// Offer DSN.
    pub fn with_dsn(mut self, on: bool) -> Self {
        self.dsn = on;
        self
    }

    /// Set the bare CR/LF policy.
    pub fn with_bare_line_ending(mut self, policy: BareLineEnding) -> Self {
        self.bare_line_ending = policy;
        self
    }

    /// Set the limits.
    pub fn with_limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Set the deadlines.
    pub fn with_timeouts(mut self, timeouts: ServerTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }
}
