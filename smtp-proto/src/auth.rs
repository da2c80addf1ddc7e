//! SMTP authentication (RFC 4954): the [`Auth`] mechanism trait, shaped like
//! Go's `smtp.Auth`, and the built-in mechanisms.
//!
//! The session never owns a mechanism: when an AUTH step needs one it emits
//! [`Event::AuthNeeded`](crate::Event::AuthNeeded) and the driver lends it
//! through [`Client::handle_auth`](crate::Client::handle_auth). So a
//! mechanism may be any type, live anywhere, and be reused.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt;

use hmac::{Hmac, Mac};
use md5::Md5;

/// What a mechanism learns about the server before it starts (Go's
/// `smtp.ServerInfo`).
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo<'a> {
    /// The host name the caller connected to (not what the server claims).
    pub name: &'a str,
    /// Whether the connection is protected by TLS.
    pub tls: bool,
    /// The AUTH mechanisms the server advertised, upper-case.
    pub mechanisms: &'a [String],
}

/// How a mechanism begins: its name and an optional initial response.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthStart {
    /// The SASL mechanism name, such as `PLAIN`.
    pub mechanism: String,
    /// The initial response (RFC 4954 §4), sent on the AUTH line; an empty
    /// response is sent as `=`. `None` sends no initial response.
    pub initial_response: Option<Secret<Vec<u8>>>,
}

impl fmt::Debug for AuthStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthStart")
            .field("mechanism", &self.mechanism)
            .field("initial_response", &self.initial_response)
            .finish()
    }
}

/// An SMTP authentication mechanism (Go's `smtp.Auth`).
///
/// `start` is called once with what is known about the server; `next` is
/// called for each `334` challenge with the decoded challenge and
/// `more = true`, and once more with the text of the final `235` and
/// `more = false`, so a mechanism that authenticates the server (SCRAM) can
/// check it. An error from `start` stops before anything is sent; an error
/// from `next` with `more = true` cancels the exchange with `*`; an error
/// with `more = false` fails the session, since the server could not prove
/// itself.
///
/// # Which mechanisms run in clear
///
/// A mechanism that sends a reusable secret (one an eavesdropper could
/// replay later) sends it only over TLS or to a loopback host
/// ([`is_localhost`]), Go's rule for PLAIN; otherwise [`Auth::start`] fails with
/// [`AuthError::InsecureConnection`] and nothing is sent. The same opt-out,
/// `allow_insecure_transport()`, lifts the rule for connections protected
/// another way (an SSH tunnel, a VPN, a Unix socket).
///
/// | mechanism | what crosses the wire | without TLS to a remote host |
/// |---|---|---|
/// | [`PlainAuth`] | the password | refused |
/// | [`LoginAuth`] | the password | refused |
/// | [`XOAuth2`] | the bearer token | refused |
/// | [`OAuthBearer`] | the bearer token | refused |
/// | [`CramMd5Auth`] | the user name and an HMAC of the server's one-time challenge | allowed |
///
/// CRAM-MD5 may run in clear (as in Go) because its response is bound to the
/// server's challenge: replaying it to another session fails. It is not safe
/// in clear, though: an eavesdropper learns the user name and can test
/// guesses of a weak password against the recorded challenge and response
/// offline. Prefer TLS for it too.
///
/// A mechanism of your own gets [`ServerInfo::tls`] and the server name and
/// applies its own rule.
pub trait Auth {
    /// Begins the exchange.
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError>;

    /// Answers a challenge (`more = true`) or checks the success message
    /// (`more = false`, the return value is ignored).
    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError>;
}

impl<A: Auth + ?Sized> Auth for &mut A {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        (**self).start(server)
    }
    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        (**self).next(challenge, more)
    }
}

impl<A: Auth + ?Sized> Auth for Box<A> {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        (**self).start(server)
    }
    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        (**self).next(challenge, more)
    }
}

/// Why a mechanism refused to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// PLAIN or LOGIN would send the password, or XOAUTH2 or OAUTHBEARER
    /// the bearer token, in clear to a remote host (Go: "unencrypted
    /// connection"). See [`Auth`] for the rule and its opt-out.
    InsecureConnection,
    /// The server's name is not the host the credentials are for (Go:
    /// "wrong host name"). Both names are given, as compared.
    WrongHost {
        /// The host the credentials were made for (the mechanism's `host`).
        expected: String,
        /// The name of the server connected to ([`ServerInfo::name`]).
        actual: String,
    },
    /// A challenge the mechanism did not expect (Go: "unexpected server
    /// challenge").
    UnexpectedChallenge,
    /// The server failed to prove itself in its final message.
    ServerNotVerified,
    /// A credential holds a byte the mechanism cannot carry (NUL in PLAIN,
    /// where NUL separates the fields; 0x01 in XOAUTH2 and OAUTHBEARER,
    /// where it does).
    InvalidCredentials,
    /// A user-defined mechanism's own failure.
    Other(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsecureConnection => f.write_str("unencrypted connection"),
            Self::WrongHost { expected, actual } => {
                f.write_str("wrong host name: the credentials are for \"")?;
                crate::text::write_escaped(f, expected)?;
                f.write_str("\", the server is \"")?;
                crate::text::write_escaped(f, actual)?;
                f.write_str("\"")
            }
            Self::UnexpectedChallenge => f.write_str("unexpected server challenge"),
            Self::ServerNotVerified => f.write_str("server failed to verify itself"),
            Self::InvalidCredentials => {
                f.write_str("credentials contain a byte the mechanism uses as a separator")
            }
            // A mechanism of the caller's may quote the server's challenge.
            Self::Other(m) => crate::text::write_escaped(f, m),
        }
    }
}

impl core::error::Error for AuthError {}

/// A value that must not leak: its `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call only where it must be used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// True for the names Go's `isLocalhost` accepts.
pub fn is_localhost(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

/// PLAIN (RFC 4616), with Go's safety rule: the password is sent only over
/// TLS or to localhost, and only to the host named here.
///
/// ```
/// use smtp_sansio::{Auth, AuthError, PlainAuth, ServerInfo};
///
/// let mut plain = PlainAuth::new("", "user", "pencil", "mail.example.com");
/// let info = ServerInfo { name: "mail.example.com", tls: false, mechanisms: &[] };
/// assert_eq!(plain.start(&info).unwrap_err(), AuthError::InsecureConnection);
/// let info = ServerInfo { name: "mail.example.com", tls: true, mechanisms: &[] };
/// let start = plain.start(&info).unwrap();
/// assert_eq!(start.initial_response.unwrap().expose(), b"\0user\0pencil");
/// ```
#[derive(Clone)]
pub struct PlainAuth {
    identity: String,
    username: String,
    password: Secret<String>,
    host: String,
    allow_insecure: bool,
}

impl PlainAuth {
    /// Credentials for `host`; `identity` is usually empty (act as
    /// `username`).
    pub fn new(identity: &str, username: &str, password: &str, host: &str) -> Self {
        Self {
            identity: identity.to_owned(),
            username: username.to_owned(),
            password: Secret(password.to_owned()),
            host: host.to_owned(),
            allow_insecure: false,
        }
    }

    /// Sends the password even without TLS to a remote host. Only for
    /// connections already protected another way (an SSH tunnel, a VPN, a
    /// Unix socket).
    pub fn allow_insecure_transport(mut self) -> Self {
        self.allow_insecure = true;
        self
    }
}

impl fmt::Debug for PlainAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainAuth")
            .field("identity", &self.identity)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("host", &self.host)
            .finish()
    }
}

/// The rule for every mechanism that sends a reusable secret (a password
/// or a bearer token): TLS, a loopback host, or the caller's explicit
/// opt-out.
fn check_secret_transport(server: &ServerInfo<'_>, allow_insecure: bool) -> Result<(), AuthError> {
    if !server.tls && !is_localhost(server.name) && !allow_insecure {
        return Err(AuthError::InsecureConnection);
    }
    Ok(())
}

/// Go's checks before sending a password: TLS or loopback, and the right host.
fn check_password_transport(
    server: &ServerInfo<'_>,
    host: &str,
    allow_insecure: bool,
) -> Result<(), AuthError> {
    check_secret_transport(server, allow_insecure)?;
    if server.name != host {
        return Err(AuthError::WrongHost {
            expected: host.to_owned(),
            actual: server.name.to_owned(),
        });
    }
    Ok(())
}

impl Auth for PlainAuth {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        check_password_transport(server, &self.host, self.allow_insecure)?;
        // RFC 4616: NUL separates the fields, so none may contain one.
        if [&self.identity, &self.username, &self.password.0]
            .iter()
            .any(|f| f.contains('\0'))
        {
            return Err(AuthError::InvalidCredentials);
        }
        let mut resp = Vec::with_capacity(
            self.identity.len() + self.username.len() + self.password.0.len() + 2,
        );
        resp.extend_from_slice(self.identity.as_bytes());
        resp.push(0);
        resp.extend_from_slice(self.username.as_bytes());
        resp.push(0);
        resp.extend_from_slice(self.password.0.as_bytes());
        Ok(AuthStart {
            mechanism: "PLAIN".into(),
            initial_response: Some(Secret(resp)),
        })
    }

    fn next(&mut self, _challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        if more {
            Err(AuthError::UnexpectedChallenge)
        } else {
            Ok(Secret(Vec::new()))
        }
    }
}

/// LOGIN (draft-murchison-sasl-login): user name, then password, each in
/// answer to a challenge. Same transport rule as [`PlainAuth`].
#[derive(Clone)]
pub struct LoginAuth {
    username: String,
    password: Secret<String>,
    host: String,
    step: u8,
    allow_insecure: bool,
}

impl LoginAuth {
    /// Credentials for `host`.
    pub fn new(username: &str, password: &str, host: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: Secret(password.to_owned()),
            host: host.to_owned(),
            step: 0,
            allow_insecure: false,
        }
    }

    /// See [`PlainAuth::allow_insecure_transport`].
    pub fn allow_insecure_transport(mut self) -> Self {
        self.allow_insecure = true;
        self
    }
}

impl fmt::Debug for LoginAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginAuth")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("host", &self.host)
            .finish()
    }
}

impl Auth for LoginAuth {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        check_password_transport(server, &self.host, self.allow_insecure)?;
        self.step = 0;
        Ok(AuthStart {
            mechanism: "LOGIN".into(),
            initial_response: None,
        })
    }

    fn next(&mut self, _challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        if !more {
            return Ok(Secret(Vec::new()));
        }
        // Answer by position, not by prompt text: servers word the prompts
        // differently ("Username:", "User Name", localised ones).
        // Saturating: a caller driving the mechanism directly (not through
        // the session's round cap) may send any number of challenges.
        self.step = self.step.saturating_add(1);
        match self.step {
            1 => Ok(Secret(self.username.as_bytes().to_vec())),
            2 => Ok(Secret(self.password.0.as_bytes().to_vec())),
            _ => Err(AuthError::UnexpectedChallenge),
        }
    }
}

/// CRAM-MD5 (RFC 2195). The password never crosses the wire, so no transport
/// rule applies (as in Go); see [`Auth`] for what an eavesdropper still
/// learns.
#[derive(Clone)]
pub struct CramMd5Auth {
    username: String,
    secret: Secret<String>,
}

impl CramMd5Auth {
    /// Credentials.
    pub fn new(username: &str, secret: &str) -> Self {
        Self {
            username: username.to_owned(),
            secret: Secret(secret.to_owned()),
        }
    }
}

impl fmt::Debug for CramMd5Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CramMd5Auth")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Auth for CramMd5Auth {
    fn start(&mut self, _server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        Ok(AuthStart {
            mechanism: "CRAM-MD5".into(),
            initial_response: None,
        })
    }

    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        if !more {
            return Ok(Secret(Vec::new()));
        }
        let mut mac = Hmac::<Md5>::new_from_slice(self.secret.0.as_bytes())
            .map_err(|_| AuthError::Other("HMAC key rejected".into()))?;
        mac.update(challenge);
        let digest = mac.finalize().into_bytes();
        let mut resp = Vec::with_capacity(self.username.len() + 33);
        resp.extend_from_slice(self.username.as_bytes());
        resp.push(b' ');
        for b in digest {
            resp.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        Ok(Secret(resp))
    }
}

/// XOAUTH2 (Google/Microsoft): `user=…^Aauth=Bearer token^A^A` as the initial
/// response. When the server answers with a `334` error challenge (a base64
/// JSON document), the client replies with an empty line and the server then
/// sends the final failure reply.
///
/// The token is a bearer credential: whoever sees it can use it. So, like
/// [`PlainAuth`]'s password, it is sent only over TLS or to a loopback host
/// unless [`allow_insecure_transport`](Self::allow_insecure_transport) says
/// otherwise.
///
/// ```
/// use smtp_sansio::{Auth, AuthError, ServerInfo, XOAuth2};
///
/// let mut xoauth2 = XOAuth2::new("me@example.com", "ya29.token");
/// let info = ServerInfo { name: "smtp.example.com", tls: false, mechanisms: &[] };
/// assert_eq!(xoauth2.start(&info).unwrap_err(), AuthError::InsecureConnection);
/// let info = ServerInfo { name: "smtp.example.com", tls: true, mechanisms: &[] };
/// assert!(xoauth2.start(&info).is_ok());
/// ```
#[derive(Clone)]
pub struct XOAuth2 {
    username: String,
    token: Secret<String>,
    allow_insecure: bool,
}

impl XOAuth2 {
    /// A user and an OAuth 2.0 access token.
    pub fn new(username: &str, access_token: &str) -> Self {
        Self {
            username: username.to_owned(),
            token: Secret(access_token.to_owned()),
            allow_insecure: false,
        }
    }

    /// Sends the token even without TLS to a remote host. Only for
    /// connections already protected another way (an SSH tunnel, a VPN, a
    /// Unix socket); see [`PlainAuth::allow_insecure_transport`].
    pub fn allow_insecure_transport(mut self) -> Self {
        self.allow_insecure = true;
        self
    }
}

impl fmt::Debug for XOAuth2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XOAuth2")
            .field("username", &self.username)
            .field("token", &self.token)
            .finish()
    }
}

impl Auth for XOAuth2 {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        check_secret_transport(server, self.allow_insecure)?;
        // 0x01 separates the fields: a user or token holding one could add
        // fields of its own.
        if self.username.contains('\x01') || self.token.0.contains('\x01') {
            return Err(AuthError::InvalidCredentials);
        }
        let resp = format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.username, self.token.0
        );
        Ok(AuthStart {
            mechanism: "XOAUTH2".into(),
            initial_response: Some(Secret(resp.into_bytes())),
        })
    }

    fn next(&mut self, _challenge: &[u8], _more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        Ok(Secret(Vec::new()))
    }
}

/// OAUTHBEARER (RFC 7628). On an error challenge the client sends the
/// single byte `0x01` as RFC 7628 §3.2.3 requires, and the server ends the
/// exchange with a failure reply.
///
/// RFC 7628 §5 requires TLS for OAUTHBEARER, since the bearer token is
/// usable by whoever sees it: the token is sent only over TLS or to a
/// loopback host unless
/// [`allow_insecure_transport`](Self::allow_insecure_transport) says
/// otherwise.
#[derive(Clone)]
pub struct OAuthBearer {
    username: String,
    token: Secret<String>,
    host: String,
    port: u16,
    allow_insecure: bool,
}

impl OAuthBearer {
    /// A user, a bearer token, and the host and port connected to (sent in
    /// the GS2 header as RFC 7628 recommends).
    pub fn new(username: &str, token: &str, host: &str, port: u16) -> Self {
        Self {
            username: username.to_owned(),
            token: Secret(token.to_owned()),
            host: host.to_owned(),
            port,
            allow_insecure: false,
        }
    }

    /// Sends the token even without TLS to a remote host. Only for
    /// connections already protected another way (an SSH tunnel, a VPN, a
    /// Unix socket); see [`PlainAuth::allow_insecure_transport`].
    pub fn allow_insecure_transport(mut self) -> Self {
        self.allow_insecure = true;
        self
    }
}

impl fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearer")
            .field("username", &self.username)
            .field("token", &self.token)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

impl Auth for OAuthBearer {
    fn start(&mut self, server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        check_secret_transport(server, self.allow_insecure)?;
        if [&self.username, &self.token.0, &self.host]
            .iter()
            .any(|f| f.contains('\x01'))
        {
            return Err(AuthError::InvalidCredentials);
        }
        // RFC 5801 saslname: ',' and '=' in the authzid are escaped.
        let user = self.username.replace('=', "=3D").replace(',', "=2C");
        let resp = format!(
            "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
            self.host, self.port, self.token.0
        );
        Ok(AuthStart {
            mechanism: "OAUTHBEARER".into(),
            initial_response: Some(Secret(resp.into_bytes())),
        })
    }

    fn next(&mut self, _challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        Ok(Secret(if more { vec![0x01] } else { Vec::new() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, tls: bool) -> ServerInfo<'_> {
        ServerInfo {
            name,
            tls,
            mechanisms: &[],
        }
    }

    #[test]
    fn plain_follows_go_rules() {
        let mut a = PlainAuth::new("", "user", "pass", "localhost");
        assert!(a.start(&info("localhost", false)).is_ok());
        let mut a = PlainAuth::new("", "user", "pass", "127.0.0.1");
        assert!(a.start(&info("127.0.0.1", false)).is_ok());
        let mut a = PlainAuth::new("", "user", "pass", "mx.example.com");
        assert_eq!(
            a.start(&info("mx.example.com", false)).unwrap_err(),
            AuthError::InsecureConnection
        );
        let err = a.start(&info("other.example.com", true)).unwrap_err();
        assert_eq!(
            err,
            AuthError::WrongHost {
                expected: "mx.example.com".into(),
                actual: "other.example.com".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "wrong host name: the credentials are for \"mx.example.com\", \
             the server is \"other.example.com\""
        );
        let start = a.start(&info("mx.example.com", true)).unwrap();
        assert_eq!(start.mechanism, "PLAIN");
        assert_eq!(
            a.next(b"", true).unwrap_err(),
            AuthError::UnexpectedChallenge
        );
        let mut a = PlainAuth::new("", "u", "p", "mx").allow_insecure_transport();
        assert!(a.start(&info("mx", false)).is_ok());
        let mut a = PlainAuth::new("admin\0", "u", "p", "localhost");
        assert_eq!(
            a.start(&info("localhost", false)).unwrap_err(),
            AuthError::InvalidCredentials
        );
        let mut a = PlainAuth::new("", "u", "p\0x", "localhost");
        assert_eq!(
            a.start(&info("localhost", false)).unwrap_err(),
            AuthError::InvalidCredentials
        );
    }

    #[test]
    fn rfc4616_example() {
        // RFC 4616 §4: authzid "", authcid "tim", password "tanstaaftanstaaf".
        let mut a = PlainAuth::new("", "tim", "tanstaaftanstaaf", "localhost");
        let start = a.start(&info("localhost", false)).unwrap();
        assert_eq!(
            start.initial_response.unwrap().expose(),
            b"\0tim\0tanstaaftanstaaf"
        );
    }

    #[test]
    fn rfc2195_example() {
        let mut a = CramMd5Auth::new("tim", "tanstaaftanstaaf");
        a.start(&info("x", false)).unwrap();
        let resp = a
            .next(b"<1896.697170952@postoffice.reston.mci.net>", true)
            .unwrap();
        assert_eq!(resp.expose(), b"tim b913a602c7eda7a495b4e6e7334d3890");
    }

    #[test]
    fn login_answers_by_position() {
        let mut a = LoginAuth::new("user", "pw", "localhost");
        assert!(
            a.start(&info("localhost", false))
                .unwrap()
                .initial_response
                .is_none()
        );
        assert_eq!(a.next(b"Username:", true).unwrap().expose(), b"user");
        assert_eq!(a.next(b"Password:", true).unwrap().expose(), b"pw");
        assert!(a.next(b"?", true).is_err());
        let mut a = LoginAuth::new("user", "pw", "remote");
        assert_eq!(
            a.start(&info("remote", false)).unwrap_err(),
            AuthError::InsecureConnection
        );
    }

    /// Issue 14 item 1: XOAUTH2 and OAUTHBEARER sent the bearer token to a
    /// remote host without TLS. Now they follow PLAIN's rule: TLS, a
    /// loopback name, or the explicit opt-out. CRAM-MD5 still runs in clear.
    #[test]
    fn bearer_tokens_are_not_sent_in_clear_to_a_remote_host() {
        let remote = info("smtp.example.com", false);
        let mut x = XOAuth2::new("me@example.com", "ya29.tok");
        assert_eq!(x.start(&remote).unwrap_err(), AuthError::InsecureConnection);
        let mut o = OAuthBearer::new("me@example.com", "tok", "smtp.example.com", 587);
        assert_eq!(o.start(&remote).unwrap_err(), AuthError::InsecureConnection);
        for name in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            assert!(x.start(&info(name, false)).is_ok(), "{name}");
            assert!(o.start(&info(name, false)).is_ok(), "{name}");
        }
        assert!(x.start(&info("smtp.example.com", true)).is_ok());
        assert!(o.start(&info("smtp.example.com", true)).is_ok());
        let mut x = XOAuth2::new("me", "tok").allow_insecure_transport();
        assert!(x.start(&remote).is_ok());
        let mut o = OAuthBearer::new("me", "tok", "mx", 587).allow_insecure_transport();
        assert!(o.start(&remote).is_ok());
        // Nothing reusable crosses the wire with CRAM-MD5.
        assert!(CramMd5Auth::new("u", "p").start(&remote).is_ok());
        // The transport rule is checked before the credentials, as for PLAIN.
        let mut x = XOAuth2::new("me\x01", "tok");
        assert_eq!(x.start(&remote).unwrap_err(), AuthError::InsecureConnection);
    }

    #[test]
    fn oauth_payloads_and_redaction() {
        let mut x = XOAuth2::new("me@example.com", "ya29.tok");
        let s = x.start(&info("x", true)).unwrap();
        assert_eq!(
            s.initial_response.unwrap().expose(),
            b"user=me@example.com\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert!(!format!("{x:?}").contains("ya29"));
        let mut o = OAuthBearer::new("a,b=c", "tok", "mx", 587);
        let s = o.start(&info("x", true)).unwrap();
        assert_eq!(
            s.initial_response.unwrap().expose(),
            b"n,a=a=2Cb=3Dc,\x01host=mx\x01port=587\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(o.next(b"{}", true).unwrap().expose(), b"\x01");
        let mut x = XOAuth2::new("me\x01auth=Bearer x", "t");
        assert_eq!(
            x.start(&info("x", true)).unwrap_err(),
            AuthError::InvalidCredentials
        );
        let mut o = OAuthBearer::new("me", "tok\x01host=evil", "mx", 587);
        assert_eq!(
            o.start(&info("x", true)).unwrap_err(),
            AuthError::InvalidCredentials
        );
        for dbg in [
            format!("{:?}", PlainAuth::new("", "u", "hunter2", "h")),
            format!("{:?}", LoginAuth::new("u", "hunter2", "h")),
            format!("{:?}", CramMd5Auth::new("u", "hunter2")),
            format!("{o:?}"),
        ] {
            assert!(!dbg.contains("hunter2") && !dbg.contains("tok\""), "{dbg}");
            assert!(dbg.contains("[redacted]"));
        }
    }
}
