//! The server's half of SCRAM (RFC 5802, RFC 7677): the session checks the
//! client's proof against keys the application stores, and proves itself
//! in return. The password never crosses the wire, nor need the server
//! keep it.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::scram::ScramHash;

/// What a server stores for a SCRAM user (RFC 5802 §3): the salt, the
/// iteration count and the two keys derived from the password.
///
/// ```
/// use smtp_sansio::ScramHash;
/// use smtp_sansio::server::ScramCredentials;
///
/// let stored = ScramCredentials::from_password(ScramHash::Sha256, "pencil", b"salt-of-user", 4096);
/// assert_eq!(stored.iterations(), 4096);
/// assert_eq!(stored.stored_key().len(), 32);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl core::fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the keys from a password (do this once, when the password is
    /// set, and store the result; `salt` should be random, 16 bytes or
    /// more; `iterations` at least 4096, RFC 7677).
    pub fn from_password(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted = hash.hi(password.as_bytes(), salt, iterations.max(1));
        let client_key = hash.hmac(&salted, &[b"Client Key"]);
        Self {
            hash,
            salt: salt.to_vec(),
            iterations: iterations.max(1),
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(&salted, &[b"Server Key"]),
        }
    }

    /// Keys already derived (from a database).
    pub fn new(
        hash: ScramHash,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Self {
        Self {
            hash,
            salt,
            iterations: iterations.max(1),
            stored_key,
            server_key,
        }
    }

    /// The hash.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `H(ClientKey)`.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// `HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }
}

/// The client-first message, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ClientFirst {
    pub(crate) hash: ScramHash,
    pub(crate) gs2_header: String,
    pub(crate) authzid: String,
    pub(crate) username: String,
    pub(crate) bare: String,
    pub(crate) nonce: String,
}

/// The exchange after the server-first message.
#[derive(Debug, Clone)]
pub(crate) struct ScramExchange {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    /// `None` for an unknown user: the exchange runs to its end with a
    /// made-up salt and fails there, so that replies do not tell which
    /// users exist (RFC 5802 §5.1).
    credentials: Option<ScramCredentials>,
}

/// `saslname` (RFC 5802 §5.1): `=2C` is `,` and `=3D` is `=`; any other
/// `=` is malformed.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3)? {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty() && !out.chars().any(char::is_control)).then_some(out)
}

fn printable_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `gs2-header client-first-bare`: `n,[a=authzid],n=user,r=nonce[,ext]`.
/// Channel binding (`p=`) is refused: the drivers do not offer it.
pub(crate) fn parse_client_first(hash: ScramHash, msg: &[u8]) -> Option<ClientFirst> {
    let msg = core::str::from_utf8(msg).ok()?;
    let (flag, rest) = msg.split_once(',')?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let (authz, bare) = rest.split_once(',')?;
    let authzid = match authz {
        "" => String::new(),
        a => decode_saslname(a.strip_prefix("a=")?)?,
    };
    let mut fields = bare.split(',');
    let username = decode_saslname(fields.next()?.strip_prefix("n=")?)?;
    let nonce = fields.next()?.strip_prefix("r=")?;
    if !printable_nonce(nonce) || fields.any(|f| f.starts_with("m=")) {
        return None;
    }
    Some(ClientFirst {
        hash,
        gs2_header: format!("{flag},{authz},"),
        authzid,
        username,
        bare: bare.to_string(),
        nonce: nonce.to_string(),
    })
}

/// The server-first message for `first`, with the server's half of the
/// nonce.
pub(crate) fn server_first(
    first: ClientFirst,
    server_nonce: &str,
    credentials: Option<ScramCredentials>,
) -> (String, ScramExchange) {
    let credentials = credentials.filter(|c| c.hash == first.hash);
    let (salt, iterations) = match &credentials {
        Some(c) => (c.salt.clone(), c.iterations),
        // A salt that is the same for the same name on this connection,
        // and tells nothing.
        None => (
            first
                .hash
                .hmac(server_nonce.as_bytes(), &[first.username.as_bytes()]),
            4096,
        ),
    };
    let nonce = format!("{}{}", first.nonce, server_nonce);
    let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
    let exchange = ScramExchange {
        first,
        server_first: server_first.clone(),
        nonce,
        credentials,
    };
    (server_first, exchange)
}

/// What the client-final message proved.
pub(crate) enum Final {
    /// The proof is right: the user, and the server-final message to send.
    Proved {
        username: String,
        authzid: String,
        server_final: String,
    },
    /// Wrong proof, unknown user, or a nonce or binding that does not match.
    Refused,
    /// Not a client-final message.
    Malformed,
}

/// Checks `c=…,r=…[,ext],p=proof` (RFC 5802 §3, §5.1).
pub(crate) fn client_final(exchange: ScramExchange, msg: &[u8]) -> Final {
    let Ok(msg) = core::str::from_utf8(msg) else {
        return Final::Malformed;
    };
    let Some((without_proof, proof)) = msg.rsplit_once(",p=") else {
        return Final::Malformed;
    };
    let mut fields = without_proof.split(',');
    let (Some(binding), Some(nonce)) = (
        fields.next().and_then(|f| f.strip_prefix("c=")),
        fields.next().and_then(|f| f.strip_prefix("r=")),
    ) else {
        return Final::Malformed;
    };
    let Ok(proof) = STANDARD.decode(proof) else {
        return Final::Malformed;
    };
    let binding_ok = STANDARD
        .decode(binding)
        .is_ok_and(|b| b == exchange.first.gs2_header.as_bytes());
    let Some(credentials) = exchange.credentials.as_ref() else {
        return Final::Refused;
    };
    if !binding_ok || nonce != exchange.nonce {
        return Final::Refused;
    }
    let h = credentials.hash;
    let auth_message = [
        exchange.first.bare.as_bytes(),
        b",",
        exchange.server_first.as_bytes(),
        b",",
        without_proof.as_bytes(),
    ];
    let client_signature = h.hmac(&credentials.stored_key, &auth_message);
    if proof.len() != client_signature.len() {
        return Final::Refused;
    }
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let computed = h.hash(&client_key);
    let same = computed.len() == credentials.stored_key.len()
        && computed
            .iter()
            .zip(&credentials.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Final::Refused;
    }
    let server_signature = h.hmac(&credentials.server_key, &auth_message);
    Final::Proved {
        username: exchange.first.username,
        authzid: exchange.first.authzid,
        server_final: format!("v={}", STANDARD.encode(server_signature)),
    }
}
