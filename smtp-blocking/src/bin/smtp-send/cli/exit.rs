//! Exit codes: `sysexits.h` where one fits, and GNU `timeout`'s 124 for a
//! timeout, which sysexits has no code for.

use smtp_blocking::Error;
use smtp_sansio::{AuthError, Error as SmtpError, ProtocolError, Unsupported, UsageError};

/// The table printed by `--help` and copied into the README.
pub(crate) const TABLE: &str = "\
Exit codes:
  0    sent: the server accepted the message for at least one recipient
  64   bad usage (EX_USAGE): unknown option, missing --from/--to, malformed
       address, header or DSN value, a MAIL or RCPT line over its length
       limit, no password available, a port that needs the other --tls
       mode (465 without --tls implicit)
  66   an input file cannot be read (EX_NOINPUT): --data, --password-file, --ca
  68   cannot connect (EX_NOHOST): the name does not resolve, or the connection
       is refused or unreachable
  69   permanent refusal (EX_UNAVAILABLE): a 5xx reply, or the server lacks an
       extension the options need (DSN, SIZE limit, the AUTH mechanism, ...)
  70   internal error (EX_SOFTWARE)
  74   the connection broke mid-session (EX_IOERR)
  75   transient refusal (EX_TEMPFAIL): a 4xx reply (including 421); try later
  76   the server broke the SMTP protocol (EX_PROTOCOL)
  77   TLS failure (EX_NOPERM): handshake or certificate verification failed,
       STARTTLS required but not offered, or a password or token would go
       in clear
  124  timed out (as GNU timeout): connect, TLS handshake or a reply";

/// Why the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Ok = 0,
    Usage = 64,
    NoInput = 66,
    NoHost = 68,
    Unavailable = 69,
    Software = 70,
    IoErr = 74,
    TempFail = 75,
    Protocol = 76,
    Tls = 77,
    Timeout = 124,
}

impl Exit {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// Classifies a failed session.
    pub(crate) fn from_error(e: &Error) -> Self {
        match e {
            Error::Smtp(e) => Self::from_smtp(e),
            Error::Io(_) => Self::IoErr,
            Error::Tls(_) => Self::Tls,
            Error::Connect { .. } => Self::NoHost,
            _ => Self::Software,
        }
    }

    fn from_smtp(e: &SmtpError) -> Self {
        match e {
            SmtpError::Rejected(_) | SmtpError::RecipientRefused(_) => {
                if e.is_transient() {
                    Self::TempFail
                } else {
                    Self::Unavailable
                }
            }
            // One transient refusal among them makes the whole failure
            // worth retrying.
            SmtpError::NoRecipientAccepted(_) if e.is_transient() => Self::TempFail,
            SmtpError::NoRecipientAccepted(_) => Self::Unavailable,
            SmtpError::Timeout { .. } => Self::Timeout,
            SmtpError::Transport | SmtpError::Abandoned => Self::IoErr,
            SmtpError::Protocol(ProtocolError::ConnectionClosed) => Self::IoErr,
            SmtpError::Protocol(_) => Self::Protocol,
            SmtpError::InvalidInput(_) | SmtpError::CommandTooLong(_) => Self::Usage,
            // The TLS mode does not fit the port (465 without --tls
            // implicit); the CLI checks this first, this is the backstop.
            SmtpError::Usage(UsageError::TlsModeMismatch { .. }) => Self::Usage,
            SmtpError::Unsupported(
                Unsupported::Extension("STARTTLS") | Unsupported::RequireTlsWithoutTls,
            ) => Self::Tls,
            SmtpError::Unsupported(_) => Self::Unavailable,
            SmtpError::Auth(AuthError::InsecureConnection | AuthError::WrongHost { .. }) => {
                Self::Tls
            }
            SmtpError::Auth(AuthError::InvalidCredentials) => Self::Usage,
            SmtpError::Auth(_) => Self::Protocol,
            _ => Self::Software,
        }
    }
}
