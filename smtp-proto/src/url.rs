//! Server URLs (`smtp://user:pass@host:port`, `smtps://…`): one string for
//! the address, the TLS mode and the credentials, parsed here so both
//! adapters read it alike.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt;

use crate::auth::{Auth, AuthError, AuthStart, LoginAuth, PlainAuth, Secret, ServerInfo};
use crate::error::InvalidInput;
use crate::session::TlsPolicy;

/// How a driver protects a connection: TLS from the first byte, or
/// plaintext upgraded with STARTTLS as a [`TlsPolicy`] says.
///
/// | mode | port convention | what happens |
/// |---|---|---|
/// | `Implicit` | 465 (RFC 8314) | TLS handshake first, then the greeting over TLS |
/// | `StartTls(Required)` | 587 (submission) | STARTTLS, failing if the server does not offer it |
/// | `StartTls(Opportunistic)` | 25 | STARTTLS when offered, plaintext otherwise (Go's `SendMail`; the default) |
/// | `StartTls(Disabled)` | any, loopback | plaintext throughout |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Implicit TLS (RFC 8314, usually port 465).
    Implicit,
    /// Plaintext first, upgraded by STARTTLS as the policy says.
    StartTls(TlsPolicy),
}

impl Default for TlsMode {
    /// STARTTLS when offered, as Go's `SendMail`.
    fn default() -> Self {
        Self::StartTls(TlsPolicy::Opportunistic)
    }
}

impl TlsMode {
    /// Whether TLS starts before the greeting.
    pub fn is_implicit(self) -> bool {
        self == Self::Implicit
    }
}

/// Why a server URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` prefix, or a scheme other than `smtp`, `smtps`,
    /// `smtp+starttls` and `smtp+insecure`.
    UnknownScheme,
    /// No host after the scheme (and the credentials).
    MissingHost,
    /// A host that is neither a DNS name, an IPv4 address nor a bracketed
    /// IPv6 address (`[::1]`).
    BadHost,
    /// A port that is not a number from 1 to 65535.
    BadPort,
    /// A `%` not followed by two hex digits, or credentials that are not
    /// UTF-8 once decoded.
    BadPercentEncoding,
    /// A path, query or fragment: a server URL names only the server.
    UnexpectedPath,
}

impl UrlError {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownScheme => {
                "unknown scheme (expected smtp, smtps, smtp+starttls or smtp+insecure)"
            }
            Self::MissingHost => "no host",
            Self::BadHost => "not a host name, IPv4 address or [IPv6] address",
            Self::BadPort => "the port is not a number from 1 to 65535",
            Self::BadPercentEncoding => "bad percent-encoding in the credentials",
            Self::UnexpectedPath => "a server URL has no path, query or fragment",
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for UrlError {}

impl From<UrlError> for InvalidInput {
    fn from(e: UrlError) -> Self {
        InvalidInput::new("url", e.reason())
    }
}

impl From<UrlError> for crate::error::Error {
    fn from(e: UrlError) -> Self {
        InvalidInput::from(e).into()
    }
}

/// A server URL: scheme, optional credentials, host and port.
///
/// | scheme | default port | TLS |
/// |---|---|---|
/// | `smtps://` | 465 | implicit TLS ([`TlsMode::Implicit`]) |
/// | `smtp+starttls://` (or `submission://`) | 587 | STARTTLS, required |
/// | `smtp://` | 25 | STARTTLS when offered; **required when the URL has credentials** |
/// | `smtp+insecure://` | 25 | never TLS (for loopback and test servers) |
///
/// Credentials are percent-decoded (`%40` for an `@` in a user name). A
/// URL with credentials never sends them in clear to a remote host: over
/// `smtp://` STARTTLS becomes required, and the mechanism
/// ([`ServerUrl::auth`]) keeps the rule of [`Auth`] (TLS or loopback),
/// unless the caller opts out by name (`allow_insecure_auth` in the
/// drivers' options).
///
/// ```
/// use smtp_sansio::{ServerUrl, TlsMode, TlsPolicy};
///
/// let url = ServerUrl::parse("smtps://me%40example.com:p%2Fss@mail.example.com")?;
/// assert_eq!(url.host(), "mail.example.com");
/// assert_eq!(url.port(), 465);
/// assert_eq!(url.tls_mode(), TlsMode::Implicit);
/// assert_eq!(url.username(), Some("me@example.com"));
/// assert_eq!(url.password(), Some("p/ss"));
/// assert_eq!(url.addr(), "mail.example.com:465");
///
/// let url = ServerUrl::parse("smtp://[::1]:2525")?;
/// assert_eq!((url.host(), url.addr().as_str()), ("::1", "[::1]:2525"));
/// assert_eq!(url.tls_mode(), TlsMode::StartTls(TlsPolicy::Opportunistic));
///
/// // Credentials over smtp:// demand STARTTLS.
/// let url = ServerUrl::parse("smtp://user:secret@mx.example")?;
/// assert_eq!(url.tls_mode(), TlsMode::StartTls(TlsPolicy::Required));
/// assert!(!format!("{url:?}").contains("secret"));
/// # Ok::<(), smtp_sansio::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<Secret<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Smtp,
    Smtps,
    StartTls,
    Insecure,
}

impl ServerUrl {
    /// Parses `scheme://[user[:password]@]host[:port][/]`; see the table
    /// above for the schemes and their default ports.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::UnknownScheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "smtp" => Scheme::Smtp,
            "smtps" => Scheme::Smtps,
            "smtp+starttls" | "submission" => Scheme::StartTls,
            "smtp+insecure" => Scheme::Insecure,
            _ => return Err(UrlError::UnknownScheme),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(UrlError::UnexpectedPath);
        }
        // The credentials end at the last '@' (a raw '@' in a password is
        // common enough to accept).
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (info, None),
                };
                let pass = pass.map(percent_decode).transpose()?.map(Secret::new);
                (Some(percent_decode(user)?), pass)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            Some(port) => port,
            None => match scheme {
                Scheme::Smtps => 465,
                Scheme::StartTls => 587,
                Scheme::Smtp | Scheme::Insecure => 25,
            },
        };
        Ok(Self {
            scheme,
            host,
            port,
            username,
            password,
        })
    }

    /// The host, without IPv6 brackets: the name TLS verifies and AUTH
    /// mechanisms see.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, given or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` (`[v6]:port` for an IPv6 address), for connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The percent-decoded user name, if the URL has credentials.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The percent-decoded password, if the URL has one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose().as_str())
    }

    /// Whether the URL carries a user name (and so asks for AUTH).
    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
    }

    /// How to protect the connection (see the table on [`ServerUrl`]).
    pub fn tls_mode(&self) -> TlsMode {
        match self.scheme {
            Scheme::Smtps => TlsMode::Implicit,
            Scheme::StartTls => TlsMode::StartTls(TlsPolicy::Required),
            Scheme::Smtp if self.has_credentials() => TlsMode::StartTls(TlsPolicy::Required),
            Scheme::Smtp => TlsMode::StartTls(TlsPolicy::Opportunistic),
            Scheme::Insecure => TlsMode::StartTls(TlsPolicy::Disabled),
        }
    }

    /// [`tls_mode`](Self::tls_mode), except that `allow_insecure_auth`
    /// lets `smtp://` with credentials fall back to plaintext when STARTTLS
    /// is not offered (the named opt-out of the credentials rule).
    pub fn tls_mode_allowing(&self, allow_insecure_auth: bool) -> TlsMode {
        match self.scheme {
            Scheme::Smtp if allow_insecure_auth => TlsMode::StartTls(TlsPolicy::Opportunistic),
            _ => self.tls_mode(),
        }
    }

    /// The mechanism for the URL's credentials, `None` without them: PLAIN
    /// when the server offers it, else LOGIN, both for [`host`](Self::host)
    /// and keeping their rule (TLS or loopback) unless
    /// `allow_insecure_auth`.
    pub fn auth(&self, allow_insecure_auth: bool) -> Option<PasswordAuth> {
        let user = self.username.as_deref()?;
        let pass = self.password().unwrap_or("");
        let mut plain = PlainAuth::new("", user, pass, &self.host);
        let mut login = LoginAuth::new(user, pass, &self.host);
        if allow_insecure_auth {
            plain = plain.allow_insecure_transport();
            login = login.allow_insecure_transport();
        }
        Some(PasswordAuth {
            plain,
            login,
            use_login: false,
        })
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerUrl")
            .field("tls_mode", &self.tls_mode())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// A user name and password sent with PLAIN when the server offers it,
/// otherwise with LOGIN (made by [`ServerUrl::auth`]). Both keep the rule
/// of [`Auth`]: TLS or a loopback host, and the right host.
#[derive(Debug, Clone)]
pub struct PasswordAuth {
    plain: PlainAuth,
    login: LoginAuth,
    use_login: bool,
}

impl Auth for PasswordAuth {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        let offers = |m: &str| server.mechanisms.iter().any(|o| o == m);
        self.use_login = !offers("PLAIN") && offers("LOGIN");
        if self.use_login {
            self.login.start(server)
        } else {
            self.plain.start(server)
        }
    }

    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        if self.use_login {
            self.login.next(challenge, more)
        } else {
            self.plain.next(challenge, more)
        }
    }
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(UrlError::BadHost)?;
        if v6.parse::<core::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost);
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::BadHost)?),
        };
        (v6, port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        // An IPv6 address needs its brackets.
        if !host.chars().all(name_char) || port.is_some_and(|p| p.contains(':')) {
            return Err(UrlError::BadHost);
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::BadPort),
                Ok(n) => Some(n),
            }
        }
        Some(_) => return Err(UrlError::BadPort),
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn percent_decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let pair = bytes
                .get(i + 1..i + 3)
                .ok_or(UrlError::BadPercentEncoding)?;
            match (hex(pair[0]), hex(pair[1])) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(UrlError::BadPercentEncoding),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::BadPercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ServerUrl, UrlError> {
        ServerUrl::parse(s)
    }

    #[test]
    fn schemes_and_default_ports() {
        let cases = [
            (
                "smtp://mx.example",
                25,
                TlsMode::StartTls(TlsPolicy::Opportunistic),
            ),
            ("smtps://mx.example", 465, TlsMode::Implicit),
            (
                "smtp+starttls://mx.example",
                587,
                TlsMode::StartTls(TlsPolicy::Required),
            ),
            (
                "submission://mx.example",
                587,
                TlsMode::StartTls(TlsPolicy::Required),
            ),
            (
                "smtp+insecure://mx.example",
                25,
                TlsMode::StartTls(TlsPolicy::Disabled),
            ),
            ("SMTPS://MX.Example:2465/", 2465, TlsMode::Implicit),
        ];
        for (s, port, mode) in cases {
            let url = parse(s).unwrap();
            assert_eq!((url.port(), url.tls_mode()), (port, mode), "{s}");
            assert_eq!(url.host(), "mx.example");
            assert!(!url.has_credentials());
            assert!(url.auth(false).is_none());
        }
    }

    #[test]
    fn credentials_are_percent_decoded_and_demand_tls() {
        let url = parse("smtp://us%40er%3Aname:p%40ss%3Aw:rd@mx.example:587").unwrap();
        assert_eq!(url.username(), Some("us@er:name"));
        assert_eq!(url.password(), Some("p@ss:w:rd"));
        assert_eq!(url.port(), 587);
        assert_eq!(url.tls_mode(), TlsMode::StartTls(TlsPolicy::Required));
        assert_eq!(
            url.tls_mode_allowing(true),
            TlsMode::StartTls(TlsPolicy::Opportunistic)
        );
        // A raw '@' in the password: the host starts after the last one.
        let url = parse("smtps://user:p@ss@mx.example").unwrap();
        assert_eq!((url.password(), url.host()), (Some("p@ss"), "mx.example"));
        // A user without a password.
        let url = parse("smtp+insecure://user@127.0.0.1:2525").unwrap();
        assert_eq!((url.username(), url.password()), (Some("user"), None));
        assert_eq!(url.tls_mode(), TlsMode::StartTls(TlsPolicy::Disabled));
        assert_eq!(url.addr(), "127.0.0.1:2525");
        // The password never shows in Debug.
        let url = parse("smtp://u:hunter2@mx.example").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn ipv6_literals() {
        let url = parse("smtp://[::1]:2525").unwrap();
        assert_eq!((url.host(), url.port()), ("::1", 2525));
        assert_eq!(url.addr(), "[::1]:2525");
        let url = parse("smtps://u:p@[2001:db8::1]").unwrap();
        assert_eq!((url.host(), url.port()), ("2001:db8::1", 465));
        assert_eq!(url.addr(), "[2001:db8::1]:465");
        assert_eq!(parse("smtp://[::1"), Err(UrlError::BadHost));
        assert_eq!(parse("smtp://[not-v6]:25"), Err(UrlError::BadHost));
        assert_eq!(parse("smtp://[::1]x"), Err(UrlError::BadHost));
        assert_eq!(parse("smtp://::1:25"), Err(UrlError::BadHost));
    }

    #[test]
    fn bad_input_is_refused() {
        let cases = [
            ("mx.example:25", UrlError::UnknownScheme),
            ("http://mx.example", UrlError::UnknownScheme),
            ("smtp:/mx.example", UrlError::UnknownScheme),
            ("smtp://", UrlError::MissingHost),
            ("smtp://user:pass@", UrlError::MissingHost),
            ("smtp://:25", UrlError::MissingHost),
            ("smtp://mx.example:", UrlError::BadPort),
            ("smtp://mx.example:0", UrlError::BadPort),
            ("smtp://mx.example:65536", UrlError::BadPort),
            ("smtp://mx.example:+25", UrlError::BadPort),
            ("smtp://mx.example:2x5", UrlError::BadPort),
            ("smtp://mx exam.ple", UrlError::BadHost),
            ("smtp://mx.example\r\nRSET", UrlError::BadHost),
            ("smtp://us%4ger@mx.example", UrlError::BadPercentEncoding),
            ("smtp://user:pa%@mx.example", UrlError::BadPercentEncoding),
            ("smtp://user:%ff@mx.example", UrlError::BadPercentEncoding),
            ("smtp://mx.example/path", UrlError::UnexpectedPath),
            ("smtp://mx.example?x=1", UrlError::UnexpectedPath),
            ("smtp://mx.example#f", UrlError::UnexpectedPath),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), Err(want), "{s:?}");
        }
        let e: InvalidInput = UrlError::BadPort.into();
        assert_eq!(e.argument(), "url");
    }

    #[test]
    fn password_auth_prefers_plain_then_login() {
        let url = parse("smtps://user:pass@mx.example").unwrap();
        let mut auth = url.auth(false).unwrap();
        let both = &["LOGIN".to_owned(), "PLAIN".to_owned()][..];
        let login = &["LOGIN".to_owned()][..];
        fn info(mechanisms: &[String], tls: bool) -> ServerInfo<'_> {
            ServerInfo {
                name: "mx.example",
                tls,
                mechanisms,
            }
        }
        assert_eq!(auth.start(&info(both, true)).unwrap().mechanism, "PLAIN");
        assert_eq!(auth.start(&info(login, true)).unwrap().mechanism, "LOGIN");
        // The transport rule holds, unless opted out by name.
        assert_eq!(
            auth.start(&info(both, false)).unwrap_err(),
            AuthError::InsecureConnection
        );
        let mut insecure = url.auth(true).unwrap();
        assert!(insecure.start(&info(both, false)).is_ok());
    }
}
