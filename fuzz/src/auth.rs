//! `auth`: arbitrary server challenges into each mechanism.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_sansio::{
    Auth, AuthError, AuthStart, Client, CommandKind, Config, CramMd5Auth, Event, LoginAuth,
    OAuthBearer, Output, PlainAuth, ScramAuth, Secret, Security, ServerInfo, Timestamp, XOAuth2,
};

use crate::input::{fields, text};
use crate::wire::Wire;

const T0: Timestamp = Timestamp::ZERO;

/// Input: a mechanism byte (0–4 the built-ins, 5 a caller-defined one with
/// the fuzzer's name and initial response, 6 SCRAM-SHA-256 with the host
/// field as its client nonce), a flag byte (0x01 TLS, 0x02
/// allow PLAIN/LOGIN/XOAUTH2/OAUTHBEARER without TLS, 0x04 the final reply is 235, else 535,
/// 0x08 challenges go raw instead of base64, 0x10 small AUTH round limit),
/// then fields separated by `0xFF`: user, secret, host, challenges.
///
/// Each mechanism is called directly (with Go's host and TLS rules checked)
/// and through a session: every challenge gets an answer or a cancel, the
/// client writes only the AUTH line, base64 lines or `*`, the exchange ends
/// within the round limit, and the AUTH command completes exactly once.
pub fn auth(data: &[u8]) {
    let [m, flags, ..] = *data else {
        return;
    };
    let f = fields(&data[2..]);
    let user = text(&f, 0);
    let secret = text(&f, 1);
    let host = text(&f, 2);
    let challenges: Vec<&[u8]> = f.iter().skip(3).copied().collect();
    let tls = flags & 0x01 != 0;
    let insecure = flags & 0x02 != 0;

    direct(m % 7, &user, &secret, &host, tls, insecure, &challenges);
    session(m % 7, flags, &user, &secret, &host, &challenges);
}

fn make(m: u8, user: &str, secret: &str, host: &str, insecure: bool) -> Box<dyn Auth> {
    match m {
        0 if insecure => {
            Box::new(PlainAuth::new("", user, secret, host).allow_insecure_transport())
        }
        0 => Box::new(PlainAuth::new(user, user, secret, host)),
        1 if insecure => Box::new(LoginAuth::new(user, secret, host).allow_insecure_transport()),
        1 => Box::new(LoginAuth::new(user, secret, host)),
        2 => Box::new(CramMd5Auth::new(user, secret)),
        3 if insecure => Box::new(XOAuth2::new(user, secret).allow_insecure_transport()),
        3 => Box::new(XOAuth2::new(user, secret)),
        4 if insecure => {
            Box::new(OAuthBearer::new(user, secret, host, 465).allow_insecure_transport())
        }
        4 => Box::new(OAuthBearer::new(user, secret, host, 465)),
        6 => Box::new(ScramAuth::sha256(user, secret, host)),
        _ => Box::new(Custom {
            name: user.to_owned(),
            initial: (!secret.is_empty()).then(|| secret.as_bytes().to_vec()),
        }),
    }
}

/// A caller-defined mechanism whose name and answers are the fuzzer's.
struct Custom {
    name: String,
    initial: Option<Vec<u8>>,
}

impl Auth for Custom {
    fn start(&mut self, _server: &ServerInfo<'_>) -> Result<AuthStart, AuthError> {
        Ok(AuthStart {
            mechanism: self.name.clone(),
            initial_response: self.initial.clone().map(Secret::new),
        })
    }

    fn next(&mut self, challenge: &[u8], more: bool) -> Result<Secret<Vec<u8>>, AuthError> {
        if more && challenge.first() == Some(&b'!') {
            return Err(AuthError::Other("refused".into()));
        }
        Ok(Secret::new(challenge.to_vec()))
    }
}

fn direct(m: u8, user: &str, secret: &str, host: &str, tls: bool, insecure: bool, cs: &[&[u8]]) {
    let names = ["localhost", host, "mx.example"];
    for name in names {
        let mut mech = make(m, user, secret, host, insecure);
        let info = ServerInfo {
            name,
            tls,
            mechanisms: &[],
        };
        let start = mech.start(&info);
        let local = smtp_sansio::is_localhost(name);
        if m == 3 || m == 4 {
            // A bearer token goes only over TLS or to localhost (or with
            // the opt-out), like PLAIN's password; 0x01 separates fields.
            let sep = [user, secret, if m == 4 { host } else { "" }]
                .iter()
                .any(|f| f.contains('\x01'));
            match &start {
                Err(AuthError::InsecureConnection) => assert!(!tls && !local && !insecure),
                Err(AuthError::InvalidCredentials) => assert!(sep),
                Ok(_) => assert!((tls || local || insecure) && !sep),
                Err(e) => panic!("start failed with {e}"),
            }
        }
        if m == 2 {
            // CRAM-MD5 sends no reusable secret: it may run in clear.
            assert!(start.is_ok(), "CRAM-MD5 refused to start");
        }
        if m <= 1 {
            // Go's rules: TLS or localhost (or the opt-out), and the right host.
            // PLAIN separates its fields with NUL, so it refuses one in them.
            let identity = if insecure { "" } else { user };
            let nul = m == 0 && [identity, user, secret].iter().any(|f| f.contains('\0'));
            match &start {
                Err(AuthError::InsecureConnection) => assert!(!tls && !local && !insecure),
                Err(AuthError::WrongHost { .. }) => assert!(name != host),
                Err(AuthError::InvalidCredentials) => assert!(nul),
                Ok(_) => assert!((tls || local || insecure) && name == host && !nul),
                Err(e) => panic!("start failed with {e}"),
            }
        }
        let Ok(start) = start else {
            continue;
        };
        let initial = start.initial_response.as_ref().map(|r| r.expose().clone());
        match m {
            0 => {
                let identity = if insecure { "" } else { user };
                let want = format!("{identity}\0{user}\0{secret}");
                assert_eq!(initial.as_deref(), Some(want.as_bytes()));
            }
            3 => {
                let want = format!("user={user}\x01auth=Bearer {secret}\x01\x01");
                assert_eq!(initial.as_deref(), Some(want.as_bytes()));
            }
            4 => check_gs2_header(initial.as_deref().unwrap_or_default(), user),
            6 => assert!(initial.as_deref().unwrap_or_default().starts_with(b"n,,n=")),
            _ => {}
        }
        let _ = format!("{start:?}");
        for (i, c) in cs.iter().enumerate() {
            let answer = mech.next(c, true);
            match m {
                0 => assert_eq!(answer.err(), Some(AuthError::UnexpectedChallenge)),
                1 => match i {
                    0 => assert_eq!(answer.ok().map(|a| a.expose().clone()), Some(user.into())),
                    1 => assert_eq!(answer.ok().map(|a| a.expose().clone()), Some(secret.into())),
                    _ => assert_eq!(answer.err(), Some(AuthError::UnexpectedChallenge)),
                },
                2 => {
                    let a = answer.expect("CRAM-MD5 answers every challenge");
                    let a = a.expose();
                    let (u, digest) = a.split_at(a.len() - 33);
                    assert_eq!(u, user.as_bytes());
                    assert_eq!(digest[0], b' ');
                    assert!(digest[1..].iter().all(|b| b"0123456789abcdef".contains(b)));
                }
                3 => assert_eq!(answer.ok().map(|a| a.expose().len()), Some(0)),
                4 => assert_eq!(answer.ok().map(|a| a.expose().clone()), Some(vec![1])),
                _ => {}
            }
        }
        if m < 5 {
            assert!(mech.next(b"done", false).is_ok());
        }
        if m == 6 {
            // The text "done" carries no server proof: a SCRAM exchange that
            // ends in it must never count as authenticated.
            let done = mech.next(b"done", false);
            assert!(
                done.is_err() || cs.len() >= 2,
                "SCRAM success without proof"
            );
        }
    }
}

/// RFC 7628 / RFC 5801: the authzid in `n,a=<saslname>,` decodes back to
/// the user name (`=2C` is `,`, `=3D` is `=`).
fn check_gs2_header(initial: &[u8], user: &str) {
    let rest = initial
        .strip_prefix(b"n,a=")
        .expect("OAUTHBEARER starts with the GS2 header");
    let end = rest
        .iter()
        .position(|&b| b == b',')
        .expect("the GS2 header ends with ','");
    let name = &rest[..end];
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < name.len() {
        match &name[i..] {
            [b'=', b'2', b'C', ..] => {
                decoded.push(b',');
                i += 3;
            }
            [b'=', b'3', b'D', ..] => {
                decoded.push(b'=');
                i += 3;
            }
            [b'=', ..] => panic!("a bare '=' in the saslname {name:?}"),
            [b, ..] => {
                decoded.push(*b);
                i += 1;
            }
            [] => unreachable!(),
        }
    }
    assert_eq!(decoded, user.as_bytes(), "the authzid does not decode");
}

fn session(m: u8, flags: u8, user: &str, secret: &str, host: &str, challenges: &[&[u8]]) {
    let mut config = Config::default();
    if flags & 0x10 != 0 {
        config.limits.max_auth_rounds = 2;
    }
    let max_rounds = config.limits.max_auth_rounds as usize;
    let security = if flags & 0x01 != 0 {
        Security::AlreadyTls
    } else {
        Security::Plaintext
    };
    let mut client = Client::new(config, "localhost", security, T0);
    let mut wire = Wire::new();
    let names = match m {
        5 => user.to_owned(),
        _ => "PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER SCRAM-SHA-256".to_owned(),
    };
    let ehlo = format!("250-mx\r\n250 AUTH {names}\r\n");
    let mut mech = make(m, user, secret, "localhost", flags & 0x02 != 0);
    let _ = host;

    let mut script: Vec<Vec<u8>> = vec![ehlo.into_bytes()];
    script.extend(challenges.iter().map(|c| {
        let text = if flags & 0x08 != 0 {
            c.to_vec()
        } else {
            BASE64.encode(c).into_bytes()
        };
        [b"334 ".as_slice(), &text, b"\r\n"].concat()
    }));
    script.push(if flags & 0x04 != 0 {
        b"235 2.7.0 ok\r\n".to_vec()
    } else {
        b"535 5.7.8 no\r\n".to_vec()
    });

    client.handle_input(T0, b"220 mx\r\n");
    let Ok(id) = client.auth() else {
        return;
    };
    let mut completions = 0;
    let mut responses = 0;
    let mut feed = script.iter();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(
            rounds < 10 * (script.len() + 8),
            "the AUTH session never ended"
        );
        match client.poll_output(T0) {
            Output::Transmit { bytes, .. } => wire.write(&bytes),
            Output::Event(Event::AuthNeeded { id: need }) => {
                assert_eq!(need, id);
                let result = client.handle_auth(mech.as_mut());
                assert!(
                    result.is_ok() || result.as_ref().err() == client.error(),
                    "handle_auth after AuthNeeded: {result:?}"
                );
            }
            Output::Event(Event::Completed { id: done, kind, .. }) if done == id => {
                assert_eq!(kind, CommandKind::Auth);
                completions += 1;
            }
            Output::Event(_) => {}
            Output::Closed => break,
            Output::Wait(_) => {
                let lines = wire.take_lines();
                responses += lines.iter().filter(|l| !l.starts_with(b"EHLO")).count();
                match feed.next() {
                    Some(bytes) => client.handle_input(T0, bytes),
                    None => client.handle_eof(T0),
                }
            }
            other => panic!("unexpected output in an AUTH session: {other:?}"),
        }
    }
    let lines = wire.take_lines();
    responses += lines.iter().filter(|l| !l.starts_with(b"EHLO")).count();
    wire.finish();
    assert_eq!(completions, 1, "AUTH completed {completions} times");
    // The AUTH line, one answer per allowed round, and one cancel.
    assert!(
        responses <= max_rounds + 2,
        "{responses} AUTH lines for a limit of {max_rounds} rounds"
    );
}
