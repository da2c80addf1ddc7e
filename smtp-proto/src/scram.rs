//! SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-1 (RFC 5802): see [`ScramAuth`].

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::sync::Arc;
use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};

use crate::auth::{Auth, AuthError, AuthStart, Secret, ServerInfo};

/// A function that returns a fresh client nonce for each exchange.
type NonceSource = Arc<dyn Fn() -> Result<String, AuthError> + Send + Sync>;

/// The hash function of a SCRAM variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramHash {
    /// SHA-256: SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SHA-1: SCRAM-SHA-1 (RFC 5802). Needs the `scram-sha1` feature.
    #[cfg(feature = "scram-sha1")]
    Sha1,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            #[cfg(feature = "scram-sha1")]
            Self::Sha1 => "SCRAM-SHA-1",
        }
    }

    pub(crate) fn hmac(self, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
        macro_rules! mac {
            ($d:ty) => {{
                // HMAC takes a key of any length: this cannot fail.
                let mut mac = <Hmac<$d>>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
                for part in data {
                    mac.update(part);
                }
                mac.finalize().into_bytes().to_vec()
            }};
        }
        match self {
            Self::Sha256 => mac!(sha2::Sha256),
            #[cfg(feature = "scram-sha1")]
            Self::Sha1 => mac!(sha1::Sha1),
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            #[cfg(feature = "scram-sha1")]
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
        }
    }

    /// RFC 5802 `Hi()`: PBKDF2 with HMAC over this hash.
    pub(crate) fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            #[cfg(feature = "scram-sha1")]
            Self::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// SCRAM-SHA-256 (RFC 7677) and, with the `scram-sha1` feature, SCRAM-SHA-1
/// (RFC 5802): the client proves it knows the password without sending it,
/// and the server proves it knows it too, in its final message.
///
/// The core has no source of randomness (it is deterministic), so the client
/// nonce comes from the caller:
///
/// - [`ScramAuth::sha256`] takes one nonce for one exchange (tests,
///   transcripts, fuzzing, or a driver with its own random source);
/// - [`ScramAuth::sha256_with_nonces`] takes a function called for a fresh
///   nonce at every exchange (so one mechanism, and its clones, can
///   authenticate many connections, as a pool does). The adapters build one
///   over the operating system's random source: `smtp_blocking::scram_sha256`
///   (re-exported by `smtp-tokio`).
///
/// The exchange, with `more` as in [`Auth::next`]:
///
/// ```text
/// C: AUTH SCRAM-SHA-256 base64(n,,n=user,r=CNONCE)        (start)
/// S: 334 base64(r=CNONCE+SNONCE,s=SALT,i=ITERATIONS)      next(.., true) -> client-final
/// C: base64(c=biws,r=CNONCE+SNONCE,p=PROOF)
/// S: 334 base64(v=SERVER_SIGNATURE)                        next(.., true) -> verified, empty answer
/// C: (empty line)
/// S: 235 2.7.0 ok                                          next(.., false) -> Ok only if verified
/// ```
///
/// A wrong server signature, an `e=` server error, or a `235` before the
/// server proved itself is an [`AuthError`]: after a challenge the exchange
/// is cancelled with `*`; at the `235` the session fails
/// ([`AuthError::ServerNotVerified`]) and is not authenticated.
///
/// Limits: no channel binding (`-PLUS` variants; the GS2 header is `n,,`),
/// no SASLprep: the user name and password are used as given (UTF-8), which
/// is what SASLprep yields for printable ASCII. The iteration count a server
/// asks for is capped ([`ScramAuth::DEFAULT_MAX_ITERATIONS`]), so a hostile
/// server cannot make the client compute for minutes.
///
/// # Example
///
/// ```
/// use smtp_sansio::{Auth, ScramAuth, ServerInfo};
///
/// // RFC 7677 §3: user "user", password "pencil".
/// let mut scram = ScramAuth::sha256("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
/// let info = ServerInfo { name: "mx.example", tls: true, mechanisms: &[] };
/// let start = scram.start(&info).unwrap();
/// assert_eq!(start.mechanism, "SCRAM-SHA-256");
/// assert_eq!(start.initial_response.unwrap().expose(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
/// let client_final = scram
///     .next(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", true)
///     .unwrap();
/// assert_eq!(
///     client_final.expose(),
///     b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
/// );
/// // The server proves it knows the password; only then is 235 accepted.
/// scram.next(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", true).unwrap();
/// scram.next(b"2.7.0 Authentication successful", false).unwrap();
/// ```
#[derive(Clone)]
pub struct ScramAuth {
    hash: ScramHash,
    authzid: String,
    username: String,
    password: Secret<String>,
    nonce: Nonce,
    max_iterations: u32,
    state: State,
}

#[derive(Clone)]
enum Nonce {
    /// One caller-supplied nonce, taken by the first exchange.
    Once(Option<Secret<String>>),
    /// A fresh nonce per exchange.
    Source(NonceSource),
}

#[derive(Clone)]
enum State {
    /// `start` not called yet, or the exchange failed.
    Idle,
    /// The client-first message was sent.
    SentFirst {
        client_nonce: Secret<String>,
        first_bare: String,
    },
    /// The client-final message was sent; the server must prove itself.
    SentFinal { server_signature: Secret<Vec<u8>> },
    /// The server's signature was right; only the `235` is missing.
    Verified,
}

impl ScramAuth {
    /// The highest iteration count accepted from a server by default. RFC
    /// 7677 asks for at least 4096 (Dovecot and Cyrus use 4096); every
    /// iteration costs two HMACs on the client.
    pub const DEFAULT_MAX_ITERATIONS: u32 = 100_000;

    /// SCRAM-SHA-256 with one caller-supplied client nonce, for exactly one
    /// exchange (a second `start` fails: a nonce must never be reused). The
    /// nonce must be unpredictable (at least 128 random bits, RFC 5802
    /// §5.1), printable ASCII without `,`; base64 of 18 or more random bytes
    /// will do.
    pub fn sha256(username: &str, password: &str, client_nonce: &str) -> Self {
        Self::with_nonce(ScramHash::Sha256, username, password, client_nonce)
    }

    /// SCRAM-SHA-256 that asks `nonces` for a fresh client nonce at every
    /// exchange (see [`sha256`](Self::sha256) for what a nonce must be). An
    /// error from `nonces` stops `start` before anything is sent.
    pub fn sha256_with_nonces(
        username: &str,
        password: &str,
        nonces: impl Fn() -> Result<String, AuthError> + Send + Sync + 'static,
    ) -> Self {
        Self::with_nonce_source(ScramHash::Sha256, username, password, nonces)
    }

    /// SCRAM-SHA-1 (RFC 5802) with one caller-supplied client nonce; see
    /// [`sha256`](Self::sha256). Prefer SCRAM-SHA-256 where offered.
    #[cfg(feature = "scram-sha1")]
    pub fn sha1(username: &str, password: &str, client_nonce: &str) -> Self {
        Self::with_nonce(ScramHash::Sha1, username, password, client_nonce)
    }

    /// SCRAM-SHA-1 with a nonce source; see
    /// [`sha256_with_nonces`](Self::sha256_with_nonces).
    #[cfg(feature = "scram-sha1")]
    pub fn sha1_with_nonces(
        username: &str,
        password: &str,
        nonces: impl Fn() -> Result<String, AuthError> + Send + Sync + 'static,
    ) -> Self {
        Self::with_nonce_source(ScramHash::Sha1, username, password, nonces)
    }

    /// Any variant with one caller-supplied client nonce.
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, client_nonce: &str) -> Self {
        Self::build(
            hash,
            username,
            password,
            Nonce::Once(Some(Secret::new(client_nonce.to_owned()))),
        )
    }

    /// Any variant with a nonce source.
    pub fn with_nonce_source(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonces: impl Fn() -> Result<String, AuthError> + Send + Sync + 'static,
    ) -> Self {
        Self::build(hash, username, password, Nonce::Source(Arc::new(nonces)))
    }

    fn build(hash: ScramHash, username: &str, password: &str, nonce: Nonce) -> Self {
        Self {
            hash,
            authzid: String::new(),
            username: username.to_owned(),
            password: Secret::new(password.to_owned()),
            nonce,
            max_iterations: Self::DEFAULT_MAX_ITERATIONS,
            state: State::Idle,
        }
    }

    /// Acts for `authzid` (sent as `a=` in the GS2 header); empty, the
    /// default, means the user itself.
    pub fn with_authzid(mut self, authzid: &str) -> Self {
        self.authzid = authzid.to_owned();
        self
    }

    /// Accepts iteration counts up to `max` from the server (default
    /// [`DEFAULT_MAX_ITERATIONS`](Self::DEFAULT_MAX_ITERATIONS)).
    pub fn with_max_iterations(mut self, max: u32) -> Self {
        self.max_iterations = max;
        self
    }

    /// The variant.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    fn next_nonce(&mut self) -> Result<Secret<String>, AuthError> {
        let nonce = match &mut self.nonce {
            Nonce::Once(n) => n.take().ok_or_else(|| {
                AuthError::Other(
                    "SCRAM: the client nonce was already used; build a new mechanism".into(),
                )
            })?,
            Nonce::Source(f) => Secret::new(f()?),
        };
        let n = nonce.expose();
        if n.is_empty() || !n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
            return Err(AuthError::Other(
                "SCRAM: the client nonce must be printable ASCII without ','".into(),
            ));
        }
        Ok(nonce)
    }

    /// Answers the server-first message with the client-final message.
    fn client_final(
        &mut self,
        challenge: &[u8],
        client_nonce: &Secret<String>,
        first_bare: &str,
    ) -> Result<Secret<Vec<u8>>, AuthError> {
        let server_first =
            core::str::from_utf8(challenge).map_err(|_| AuthError::UnexpectedChallenge)?;
        let first = parse_server_first(server_first)?;
        if !first.nonce.starts_with(client_nonce.expose().as_str())
            || first.nonce.len() == client_nonce.expose().len()
        {
            // The server must echo our nonce and add its own.
            return Err(AuthError::UnexpectedChallenge);
        }
        if first.iterations > self.max_iterations {
            return Err(AuthError::Other(format!(
                "SCRAM: the server asks for {} iterations, above the limit {}",
                first.iterations, self.max_iterations
            )));
        }
        let h = self.hash;
        let salted = h.hi(
            self.password.expose().as_bytes(),
            &first.salt,
            first.iterations,
        );
        let client_key = h.hmac(&salted, &[b"Client Key"]);
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c={},r={}", BASE64.encode(self.gs2_header()), first.nonce);
        let auth_message = [
            first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = h.hmac(&stored_key, &auth_message);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, &[b"Server Key"]);
        let server_signature = h.hmac(&server_key, &auth_message);
        self.state = State::SentFinal {
            server_signature: Secret::new(server_signature),
        };
        let msg = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok(Secret::new(msg.into_bytes()))
    }

    fn gs2_header(&self) -> String {
        if self.authzid.is_empty() {
            "n,,".to_owned()
        } else {
            format!("n,a={},", saslname(&self.authzid))
        }
    }
}

impl fmt::Debug for ScramAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramAuth")
            .field("mechanism", &self.hash.mechanism())
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("max_iterations", &self.max_iterations)
            .finish_non_exhaustive()
    }
}

impl Auth for ScramAuth {
    fn start(&mut self, _server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        // The password never crosses the wire, so (as for CRAM-MD5) no
        // transport rule applies; the server is authenticated by its proof.
        self.state = State::Idle;
        let client_nonce = self.next_nonce()?;
        let first_bare = format!("n={},r={}", saslname(&self.username), client_nonce.expose());
        let mut first = self.gs2_header().into_bytes();
        first.extend_from_slice(first_bare.as_bytes());
        self.state = State::SentFirst {
            client_nonce,
            first_bare,
        };
        Ok(AuthStart {
            mechanism: self.hash.mechanism().to_owned(),
            initial_response: Some(Secret::new(first)),
        })
    }

    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        // Any failure leaves the mechanism idle: nothing of a failed
        // exchange can be used to claim success later.
        let state = core::mem::replace(&mut self.state, State::Idle);
        match (state, more) {
            (
                State::SentFirst {
                    client_nonce,
                    first_bare,
                },
                true,
            ) => self.client_final(challenge, &client_nonce, &first_bare),
            (State::SentFinal { server_signature }, true) => {
                verify_server_final(challenge, &server_signature)?;
                self.state = State::Verified;
                Ok(Secret::new(Vec::new()))
            }
            (State::Verified, false) => Ok(Secret::new(Vec::new())),
            (State::SentFinal { server_signature }, false) => {
                // RFC 4954 has the server-final message in a 334 challenge;
                // accept it also as the 235's text (some servers do that),
                // but only if it verifies.
                let text = String::from_utf8_lossy(challenge);
                let verified = text.split_ascii_whitespace().any(|word| {
                    BASE64.decode(word).is_ok_and(|decoded| {
                        verify_server_final(&decoded, &server_signature).is_ok()
                    })
                });
                if verified {
                    Ok(Secret::new(Vec::new()))
                } else {
                    Err(AuthError::ServerNotVerified)
                }
            }
            // A success before the server proved itself.
            (_, false) => Err(AuthError::ServerNotVerified),
            // A challenge out of turn (after the proof, or before start).
            (_, true) => Err(AuthError::UnexpectedChallenge),
        }
    }
}

/// RFC 5802 `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The fields of a server-first message.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

/// `r=NONCE,s=SALT,i=COUNT[,extensions]`; a mandatory extension (`m=`) is
/// refused, as RFC 5802 requires of a client that knows none.
fn parse_server_first(msg: &str) -> Result<ServerFirst<'_>, AuthError> {
    let mut parts = msg.split(',');
    let mut field = |name: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .ok_or(AuthError::UnexpectedChallenge)
    };
    let nonce = field("r=")?;
    let salt = field("s=")?;
    let iterations = field("i=")?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(AuthError::UnexpectedChallenge);
    }
    let salt = BASE64
        .decode(salt)
        .map_err(|_| AuthError::UnexpectedChallenge)?;
    if salt.is_empty() {
        return Err(AuthError::UnexpectedChallenge);
    }
    let iterations: u32 = match iterations.parse() {
        Ok(i) if i > 0 && iterations.bytes().all(|b| b.is_ascii_digit()) => i,
        _ => return Err(AuthError::UnexpectedChallenge),
    };
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// Checks `v=SIGNATURE[,extensions]` in constant time; `e=VALUE` is the
/// server's report of a failure.
fn verify_server_final(msg: &[u8], expected: &Secret<Vec<u8>>) -> Result<(), AuthError> {
    let msg = core::str::from_utf8(msg).map_err(|_| AuthError::ServerNotVerified)?;
    let first = msg.split(',').next().unwrap_or_default();
    if let Some(err) = first.strip_prefix("e=") {
        let err: String = err
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(64)
            .collect();
        return Err(AuthError::Other(format!("SCRAM: the server reports {err}")));
    }
    let sig = first
        .strip_prefix("v=")
        .and_then(|v| BASE64.decode(v).ok())
        .ok_or(AuthError::ServerNotVerified)?;
    let want = expected.expose();
    let same =
        sig.len() == want.len() && sig.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(AuthError::ServerNotVerified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ServerInfo<'static> {
        ServerInfo {
            name: "mx.example",
            tls: false,
            mechanisms: &[],
        }
    }

    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    /// RFC 7677 §3, byte for byte.
    #[test]
    fn rfc7677_example() {
        let mut a = ScramAuth::sha256("user", "pencil", NONCE);
        let start = a.start(&info()).unwrap();
        assert_eq!(start.mechanism, "SCRAM-SHA-256");
        assert_eq!(
            start.initial_response.unwrap().expose(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        assert_eq!(a.next(SERVER_FIRST, true).unwrap().expose(), CLIENT_FINAL);
        assert_eq!(a.next(SERVER_FINAL, true).unwrap().expose(), b"");
        assert!(a.next(b"2.7.0 Authentication successful", false).is_ok());
    }

    /// RFC 5802 §5, byte for byte.
    #[cfg(feature = "scram-sha1")]
    #[test]
    fn rfc5802_example() {
        let mut a = ScramAuth::sha1("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        let start = a.start(&info()).unwrap();
        assert_eq!(start.mechanism, "SCRAM-SHA-1");
        assert_eq!(
            start.initial_response.unwrap().expose(),
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );
        let fin = a
            .next(
                b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                true,
            )
            .unwrap();
        assert_eq!(
            fin.expose(),
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert!(a.next(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", true).is_ok());
        assert!(a.next(b"", false).is_ok());
    }

    fn at_final() -> ScramAuth {
        let mut a = ScramAuth::sha256("user", "pencil", NONCE);
        a.start(&info()).unwrap();
        a.next(SERVER_FIRST, true).unwrap();
        a
    }

    #[test]
    fn forged_server_signature_is_refused() {
        let mut a = at_final();
        assert_eq!(
            a.next(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", true)
                .unwrap_err(),
            AuthError::ServerNotVerified
        );
        // The 235 that may follow a cancelled exchange proves nothing.
        assert_eq!(
            a.next(b"ok", false).unwrap_err(),
            AuthError::ServerNotVerified
        );
        for bad in [&b"v="[..], b"v=!!", b"x=abc", b"", b"\xff"] {
            let mut a = at_final();
            assert_eq!(
                a.next(bad, true).unwrap_err(),
                AuthError::ServerNotVerified,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn success_without_proof_is_refused() {
        // 235 right after the client-final message, with no v= anywhere.
        let mut a = at_final();
        assert_eq!(
            a.next(b"2.7.0 Authentication successful", false)
                .unwrap_err(),
            AuthError::ServerNotVerified
        );
        // 235 right after the client-first message.
        let mut a = ScramAuth::sha256("user", "pencil", NONCE);
        a.start(&info()).unwrap();
        assert_eq!(
            a.next(b"ok", false).unwrap_err(),
            AuthError::ServerNotVerified
        );
        // The server-final message in the 235 text verifies, and only if right.
        let mut a = at_final();
        let text = format!("2.7.0 {}", BASE64.encode(SERVER_FINAL));
        assert!(a.next(text.as_bytes(), false).is_ok());
        let mut a = at_final();
        let forged = format!("2.7.0 {}", BASE64.encode(b"v=AAAA"));
        assert_eq!(
            a.next(forged.as_bytes(), false).unwrap_err(),
            AuthError::ServerNotVerified
        );
    }

    #[test]
    fn server_error_and_bad_server_first() {
        let mut a = at_final();
        let err = a.next(b"e=invalid-proof", true).unwrap_err();
        assert_eq!(
            err,
            AuthError::Other("SCRAM: the server reports invalid-proof".into())
        );
        for bad in [
            // not our nonce
            &b"r=XXprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"[..],
            // our nonce without a server part
            b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // mandatory extension
            b"m=ext,r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=!!,i=4096",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=,i=4096",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=+5",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
            b"\xff",
        ] {
            let mut a = ScramAuth::sha256("user", "pencil", NONCE);
            a.start(&info()).unwrap();
            assert_eq!(
                a.next(bad, true).unwrap_err(),
                AuthError::UnexpectedChallenge,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A third challenge after the proof.
        let mut a = at_final();
        a.next(SERVER_FINAL, true).unwrap();
        assert_eq!(
            a.next(b"more?", true).unwrap_err(),
            AuthError::UnexpectedChallenge
        );
    }

    #[test]
    fn iteration_cap() {
        let mut a = ScramAuth::sha256("user", "pencil", NONCE).with_max_iterations(4095);
        a.start(&info()).unwrap();
        assert!(matches!(
            a.next(SERVER_FIRST, true).unwrap_err(),
            AuthError::Other(m) if m.contains("4096")
        ));
    }

    #[test]
    fn nonces_once_or_from_a_source() {
        let mut a = ScramAuth::sha256("user", "pencil", NONCE);
        a.start(&info()).unwrap();
        assert!(a.start(&info()).is_err(), "a fixed nonce is used once");
        for bad in ["", "a,b", "sp ace", "nul\0"] {
            let mut a = ScramAuth::sha256("user", "pencil", bad);
            assert!(a.start(&info()).is_err(), "{bad:?}");
        }
        let n = std::sync::atomic::AtomicU32::new(0);
        let mut a = ScramAuth::sha256_with_nonces("us=er,x", "pencil", move || {
            Ok(format!(
                "nonce{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ))
        })
        .with_authzid("ad,min");
        let first = a.start(&info()).unwrap().initial_response.unwrap();
        assert_eq!(first.expose(), b"n,a=ad=2Cmin,n=us=3Der=2Cx,r=nonce0");
        let mut b = a.clone();
        let second = b.start(&info()).unwrap().initial_response.unwrap();
        assert_eq!(second.expose(), b"n,a=ad=2Cmin,n=us=3Der=2Cx,r=nonce1");
        let mut failing =
            ScramAuth::sha256_with_nonces("u", "p", || Err(AuthError::Other("no random".into())));
        assert!(failing.start(&info()).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let a = ScramAuth::sha256("user", "hunter2", "nonce-secret");
        let dbg = format!("{a:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("nonce-secret"),
            "{dbg}"
        );
        assert!(dbg.contains("[redacted]"));
    }
}
