//! The server's half of SASL (RFC 4954): decoding what the client sends
//! into [`Credentials`] the application checks.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::Md5;

use super::config::ServerMechanism;
use crate::auth::Secret;

/// What a client presented in AUTH, for the application to check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// PLAIN or LOGIN: a user name and a password.
    Password {
        /// The mechanism used.
        mechanism: ServerMechanism,
        /// The authorisation identity (PLAIN's first field; empty when
        /// not given, and always for LOGIN): the user to act as.
        authzid: String,
        /// The user name.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// CRAM-MD5: the application checks the digest with
    /// [`Credentials::verify_cram_md5`] and the user's shared secret.
    CramMd5 {
        /// The user name.
        username: String,
        /// The challenge the server sent.
        challenge: String,
        /// The client's HMAC-MD5 of the challenge, 16 bytes.
        digest: [u8; 16],
    },
    /// SCRAM: the session has already checked the client's proof against
    /// the stored keys (`ScramCredentials`); accept to let this user in.
    #[cfg(feature = "scram")]
    Scram {
        /// The mechanism used.
        mechanism: ServerMechanism,
        /// The authorisation identity (empty when not given).
        authzid: String,
        /// The user name, proved.
        username: String,
    },
    /// XOAUTH2 or OAUTHBEARER: a user name and a bearer token.
    Token {
        /// The mechanism used.
        mechanism: ServerMechanism,
        /// The user name (OAUTHBEARER's authorisation identity).
        username: String,
        /// The bearer token.
        token: Secret<String>,
    },
}

impl Credentials {
    /// The user name given.
    pub fn username(&self) -> &str {
        match self {
            Self::Password { username, .. }
            | Self::CramMd5 { username, .. }
            | Self::Token { username, .. } => username,
            #[cfg(feature = "scram")]
            Self::Scram { username, .. } => username,
        }
    }

    /// True when these are PLAIN/LOGIN credentials with exactly this user
    /// name and password (and no other authorisation identity), compared in
    /// constant time for the password.
    pub fn verify_password(&self, user: &str, pass: &str) -> bool {
        match self {
            Self::Password {
                authzid,
                username,
                password,
                ..
            } => {
                let id_ok = authzid.is_empty() || authzid == username;
                id_ok
                    & (username == user)
                    & constant_time_eq(password.expose().as_bytes(), pass.as_bytes())
            }
            _ => false,
        }
    }

    /// True when these are XOAUTH2/OAUTHBEARER credentials with exactly
    /// this user name and token (compared in constant time).
    pub fn verify_token(&self, user: &str, expected: &str) -> bool {
        match self {
            Self::Token {
                username, token, ..
            } => {
                (username == user)
                    & constant_time_eq(token.expose().as_bytes(), expected.as_bytes())
            }
            _ => false,
        }
    }

    /// For CRAM-MD5: true when the digest is the HMAC-MD5 of the challenge
    /// under `secret` (RFC 2195), compared in constant time. False for other
    /// mechanisms.
    pub fn verify_cram_md5(&self, secret: &str) -> bool {
        match self {
            Self::CramMd5 {
                challenge, digest, ..
            } => {
                let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret.as_bytes()) else {
                    return false;
                };
                mac.update(challenge.as_bytes());
                mac.verify_slice(digest).is_ok()
            }
            _ => false,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where an AUTH exchange stands.
#[derive(Debug, Clone)]
pub(crate) enum SaslState {
    /// PLAIN, waiting for the response to `334 `.
    PlainResponse,
    /// LOGIN, waiting for the user name.
    LoginUser,
    /// LOGIN, waiting for the password.
    LoginPassword(String),
    /// CRAM-MD5, waiting for `user digest`.
    CramResponse(String),
    /// XOAUTH2 or OAUTHBEARER, waiting for the client's message.
    TokenResponse(ServerMechanism),
    /// SCRAM, waiting for the client-first message.
    #[cfg(feature = "scram")]
    ScramFirst(ServerMechanism),
    /// SCRAM, waiting for the client-final message.
    #[cfg(feature = "scram")]
    ScramFinal(ServerMechanism, Box<super::scram::ScramExchange>),
    /// SCRAM, the server-final message sent: waiting for the client's
    /// empty response before `235`.
    #[cfg(feature = "scram")]
    ScramAck(String),
}

/// What one step of the exchange leads to.
pub(crate) enum SaslStep {
    /// Send `334 challenge` (base64 already) and wait in this state.
    Challenge(String, SaslState),
    /// The credentials are complete.
    Done(Credentials),
    /// The client's data is malformed (`501 5.5.2`).
    Malformed,
    /// The client cancelled with `*` (`501 5.7.0`).
    Cancelled,
    /// SCRAM: the client-first message names a user; the application
    /// must give that user's stored keys.
    #[cfg(feature = "scram")]
    ScramLookup(ServerMechanism, super::scram::ClientFirst),
    /// SCRAM: the proof is right; the credentials for the application,
    /// and the server-final message to send once it accepts.
    #[cfg(feature = "scram")]
    ScramProved(Credentials, String),
    /// SCRAM: the proof is wrong (`535 5.7.8`).
    #[cfg(feature = "scram")]
    Refused,
    /// SCRAM: the client acknowledged the server's proof.
    #[cfg(feature = "scram")]
    ScramDone(String),
}

/// Decodes one client response line: base64, or `=` for empty (RFC 4954
/// §4); `None` when malformed.
fn decode(text: &str) -> Option<Vec<u8>> {
    if text == "=" {
        return Some(Vec::new());
    }
    STANDARD.decode(text.trim_end()).ok()
}

fn utf8(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control()))
}

/// Starts an exchange for `mechanism` with the client's initial response.
pub(crate) fn start(
    mechanism: ServerMechanism,
    initial: Option<&str>,
    challenge: Option<String>,
) -> SaslStep {
    match mechanism {
        ServerMechanism::Plain => match initial {
            Some(text) => step(SaslState::PlainResponse, text),
            None => SaslStep::Challenge(String::new(), SaslState::PlainResponse),
        },
        ServerMechanism::Login => match initial {
            Some(text) => step(SaslState::LoginUser, text),
            None => SaslStep::Challenge(STANDARD.encode("Username:"), SaslState::LoginUser),
        },
        ServerMechanism::CramMd5 => match (initial, challenge) {
            (None, Some(challenge)) => SaslStep::Challenge(
                STANDARD.encode(&challenge),
                SaslState::CramResponse(challenge),
            ),
            // RFC 2195 has no initial response; without a nonce there is
            // no challenge to send.
            _ => SaslStep::Malformed,
        },
        ServerMechanism::XOAuth2 | ServerMechanism::OAuthBearer => match initial {
            Some(text) => step(SaslState::TokenResponse(mechanism), text),
            None => SaslStep::Challenge(String::new(), SaslState::TokenResponse(mechanism)),
        },
        #[cfg(feature = "scram")]
        _ if mechanism.scram_hash().is_some() => match initial {
            Some(text) => step(SaslState::ScramFirst(mechanism), text),
            None => SaslStep::Challenge(String::new(), SaslState::ScramFirst(mechanism)),
        },
        #[allow(unreachable_patterns)]
        _ => SaslStep::Malformed,
    }
}

/// Takes one response line of the client in `state`.
pub(crate) fn step(state: SaslState, line: &str) -> SaslStep {
    if line == "*" {
        return SaslStep::Cancelled;
    }
    let Some(data) = decode(line) else {
        return SaslStep::Malformed;
    };
    match state {
        SaslState::PlainResponse => {
            let mut fields = data.split(|&b| b == 0);
            let (Some(authzid), Some(user), Some(pass), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return SaslStep::Malformed;
            };
            let (Some(authzid), Some(username), Ok(password)) = (
                utf8(authzid.to_vec()),
                utf8(user.to_vec()),
                String::from_utf8(pass.to_vec()),
            ) else {
                return SaslStep::Malformed;
            };
            if username.is_empty() {
                return SaslStep::Malformed;
            }
            SaslStep::Done(Credentials::Password {
                mechanism: ServerMechanism::Plain,
                authzid,
                username,
                password: Secret::new(password),
            })
        }
        SaslState::LoginUser => match utf8(data) {
            Some(user) if !user.is_empty() => {
                SaslStep::Challenge(STANDARD.encode("Password:"), SaslState::LoginPassword(user))
            }
            _ => SaslStep::Malformed,
        },
        SaslState::LoginPassword(username) => match String::from_utf8(data) {
            Ok(password) => SaslStep::Done(Credentials::Password {
                mechanism: ServerMechanism::Login,
                authzid: String::new(),
                username,
                password: Secret::new(password),
            }),
            Err(_) => SaslStep::Malformed,
        },
        SaslState::CramResponse(challenge) => {
            let Some(text) = utf8(data) else {
                return SaslStep::Malformed;
            };
            let Some((username, hex)) = text.rsplit_once(' ') else {
                return SaslStep::Malformed;
            };
            let Some(digest) = parse_hex_digest(hex) else {
                return SaslStep::Malformed;
            };
            if username.is_empty() {
                return SaslStep::Malformed;
            }
            SaslStep::Done(Credentials::CramMd5 {
                username: username.to_string(),
                challenge,
                digest,
            })
        }
        SaslState::TokenResponse(mechanism) => {
            let Some(text) = String::from_utf8(data).ok() else {
                return SaslStep::Malformed;
            };
            let parsed = if mechanism == ServerMechanism::XOAuth2 {
                parse_xoauth2(&text)
            } else {
                parse_oauthbearer(&text)
            };
            match parsed {
                Some((username, token)) => SaslStep::Done(Credentials::Token {
                    mechanism,
                    username,
                    token: Secret::new(token),
                }),
                None => SaslStep::Malformed,
            }
        }
        #[cfg(feature = "scram")]
        SaslState::ScramFirst(mechanism) => {
            let parsed = mechanism
                .scram_hash()
                .and_then(|hash| super::scram::parse_client_first(hash, &data));
            match parsed {
                Some(first) => SaslStep::ScramLookup(mechanism, first),
                None => SaslStep::Malformed,
            }
        }
        #[cfg(feature = "scram")]
        SaslState::ScramFinal(mechanism, exchange) => {
            match super::scram::client_final(*exchange, &data) {
                super::scram::Final::Proved {
                    username,
                    authzid,
                    server_final,
                } => SaslStep::ScramProved(
                    Credentials::Scram {
                        mechanism,
                        authzid,
                        username,
                    },
                    server_final,
                ),
                super::scram::Final::Refused => SaslStep::Refused,
                super::scram::Final::Malformed => SaslStep::Malformed,
            }
        }
        #[cfg(feature = "scram")]
        SaslState::ScramAck(username) => {
            if data.is_empty() {
                SaslStep::ScramDone(username)
            } else {
                SaslStep::Malformed
            }
        }
    }
}

/// `user=NAME ^A auth=Bearer TOKEN ^A ^A`.
fn parse_xoauth2(text: &str) -> Option<(String, String)> {
    let rest = text.strip_suffix("\x01\x01")?;
    let (user, auth) = rest.split_once('\x01')?;
    let user = user.strip_prefix("user=")?;
    let token = auth.strip_prefix("auth=Bearer ")?;
    valid_token_fields(user, token)
}

/// RFC 7628 §3.1: `gs2-header ^A *(key=value ^A) ^A`, the user in the
/// header's `a=` (with `=2C` and `=3D` for `,` and `=`), the token in
/// `auth=Bearer …`.
fn parse_oauthbearer(text: &str) -> Option<(String, String)> {
    let rest = text.strip_suffix("\x01\x01")?;
    let mut parts = rest.split('\x01');
    let header = parts.next()?;
    let mut fields = header.split(',');
    if !matches!(fields.next()?, "n" | "y") {
        return None;
    }
    let user = fields
        .next()?
        .strip_prefix("a=")?
        .replace("=2C", ",")
        .replace("=3D", "=");
    let token = parts.find_map(|kv| kv.strip_prefix("auth=Bearer "))?;
    valid_token_fields(&user, token)
}

fn valid_token_fields(user: &str, token: &str) -> Option<(String, String)> {
    let ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
    (ok(user) && ok(token)).then(|| (user.to_string(), token.to_string()))
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *out.get_mut(i)? = u8::try_from(hi << 4 | lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(step: SaslStep) -> Credentials {
        match step {
            SaslStep::Done(c) => c,
            _ => panic!("not done"),
        }
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let c = done(start(
            ServerMechanism::Plain,
            Some("AGFsaWNlAHNlY3JldA=="),
            None,
        ));
        assert!(c.verify_password("alice", "secret"));
        assert!(!c.verify_password("alice", "secreT"));
        let SaslStep::Challenge(text, state) = start(ServerMechanism::Plain, None, None) else {
            panic!("no challenge")
        };
        assert_eq!(text, "");
        assert!(done(step(state, "AGFsaWNlAHNlY3JldA==")).verify_password("alice", "secret"));
        assert!(matches!(
            step(SaslState::PlainResponse, "*"),
            SaslStep::Cancelled
        ));
        assert!(matches!(
            step(SaslState::PlainResponse, "!!"),
            SaslStep::Malformed
        ));
        assert!(matches!(
            step(SaslState::PlainResponse, "YQBi"),
            SaslStep::Malformed
        ));
    }

    #[test]
    fn login_asks_user_then_password() {
        let SaslStep::Challenge(q, state) = start(ServerMechanism::Login, None, None) else {
            panic!()
        };
        assert_eq!(q, "VXNlcm5hbWU6");
        let SaslStep::Challenge(q, state) = step(state, "Ym9i") else {
            panic!()
        };
        assert_eq!(q, "UGFzc3dvcmQ6");
        assert!(done(step(state, "aHVudGVyMg==")).verify_password("bob", "hunter2"));
    }

    #[test]
    fn bearer_tokens_in_both_framings() {
        let xoauth2 = STANDARD.encode("user=bob\x01auth=Bearer t0k\x01\x01");
        assert!(
            done(start(ServerMechanism::XOAuth2, Some(&xoauth2), None)).verify_token("bob", "t0k")
        );
        let bearer =
            STANDARD.encode("n,a=b=2Cob,\x01host=mx\x01port=587\x01auth=Bearer t0k\x01\x01");
        assert!(
            done(start(ServerMechanism::OAuthBearer, Some(&bearer), None))
                .verify_token("b,ob", "t0k")
        );
        let bad = STANDARD.encode("user=bob\x01auth=Basic x\x01\x01");
        assert!(matches!(
            start(ServerMechanism::XOAuth2, Some(&bad), None),
            SaslStep::Malformed
        ));
    }

    #[test]
    fn cram_md5_verifies_rfc_2195_example() {
        let challenge = String::from("<1896.697170952@postoffice.reston.mci.net>");
        let SaslStep::Challenge(_, state) = start(ServerMechanism::CramMd5, None, Some(challenge))
        else {
            panic!()
        };
        // RFC 2195 §2: "tim b913a602c7eda7a495b4e6e7334d3890", secret
        // "tanstaaftanstaaf".
        let c = done(step(
            state,
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw",
        ));
        assert_eq!(c.username(), "tim");
        assert!(c.verify_cram_md5("tanstaaftanstaaf"));
        assert!(!c.verify_cram_md5("wrong"));
        assert!(matches!(
            start(ServerMechanism::CramMd5, None, None),
            SaslStep::Malformed
        ));
    }
}
