//! SCRAM-SHA-256 against a scripted server, on both adapters: RFC 7677's
//! exchange succeeds only when the server proves itself; a forged server
//! signature and a `235` without any proof are typed `AuthError`s, and the
//! session is not authenticated. (The real-server side, including a wrong
//! password, is in `interop.rs` against Dovecot.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use smtp_sansio::{AuthError, Error as SmtpError, ScramAuth};
use smtp_tests::{Handler, Script, TestServer};

// RFC 7677 §3 (user "user", password "pencil").
const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const FORGED_FINAL: &str = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// How the scripted server ends the exchange.
#[derive(Clone, Copy)]
enum Ending {
    /// The right server signature, then 235.
    Proof,
    /// A wrong signature: the client must cancel with `*`.
    Forged,
    /// 235 straight after the client-final message, no proof at all.
    NoProof,
}

fn script(ending: Ending) -> Script {
    let s = Script::new()
        .greet_ehlo("client.example", &["AUTH SCRAM-SHA-256 PLAIN"])
        .expect(&format!("AUTH SCRAM-SHA-256 {}", B64.encode(CLIENT_FIRST)))
        .send_line(&format!("334 {}", B64.encode(SERVER_FIRST)))
        .expect(&B64.encode(CLIENT_FINAL));
    match ending {
        Ending::Proof => s
            .send_line(&format!("334 {}", B64.encode(SERVER_FINAL)))
            .expect("")
            .send_line("235 2.7.0 Authentication successful")
            .exchange("NOOP", "250 2.0.0 OK")
            .exchange("QUIT", "221 2.0.0 Bye"),
        Ending::Forged => s
            .send_line(&format!("334 {}", B64.encode(FORGED_FINAL)))
            .expect("*")
            .send_line("501 5.5.4 Authentication cancelled")
            .exchange("NOOP", "250 2.0.0 OK")
            .exchange("QUIT", "221 2.0.0 Bye"),
        Ending::NoProof => s
            .send_line("235 2.7.0 Authentication successful")
            .silence(std::time::Duration::from_secs(2)),
    }
}

fn scram() -> ScramAuth {
    ScramAuth::sha256("user", "pencil", NONCE)
}

fn assert_not_verified(err: &smtp_blocking::Error) {
    assert!(
        matches!(
            err,
            smtp_blocking::Error::Smtp(SmtpError::Auth(AuthError::ServerNotVerified))
        ),
        "{err:?}"
    );
}

fn blocking(ending: Ending) {
    let server = TestServer::start(Handler::script(script(ending)));
    let addr = server.addr().to_string();
    let mut c = smtp_blocking::Client::connect(&addr).expect("connect");
    c.hello("client.example").expect("EHLO");
    let mut auth = scram();
    let res = c.auth(&mut auth);
    match ending {
        Ending::Proof => {
            res.expect("SCRAM with the server's proof");
            assert!(c.session().is_authenticated());
            c.noop().expect("NOOP");
            c.quit().expect("QUIT");
        }
        Ending::Forged => {
            assert_not_verified(&res.expect_err("forged signature"));
            assert!(!c.session().is_authenticated());
            // Cancelled with `*`: the session goes on, unauthenticated.
            c.noop().expect("NOOP after the cancelled exchange");
            c.quit().expect("QUIT");
        }
        Ending::NoProof => {
            assert_not_verified(&res.expect_err("235 without proof"));
            assert!(!c.session().is_authenticated());
            // The server claimed a success it could not prove: the session
            // is over.
            assert!(c.noop().is_err(), "unusable after an unproven 235");
            c.close();
        }
    }
}

fn tokio(ending: Ending) {
    let server = TestServer::start(Handler::script(script(ending)));
    let addr = server.addr().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = smtp_tokio::Client::connect(&addr).await.expect("connect");
        c.hello("client.example").await.expect("EHLO");
        let mut auth = scram();
        let res = c.auth(&mut auth).await;
        match ending {
            Ending::Proof => {
                res.expect("SCRAM with the server's proof");
                assert!(c.session().is_authenticated());
                c.noop().await.expect("NOOP");
                c.quit().await.expect("QUIT");
            }
            Ending::Forged => {
                assert_not_verified(&res.expect_err("forged signature"));
                assert!(!c.session().is_authenticated());
                c.noop().await.expect("NOOP after the cancelled exchange");
                c.quit().await.expect("QUIT");
            }
            Ending::NoProof => {
                assert_not_verified(&res.expect_err("235 without proof"));
                assert!(!c.session().is_authenticated());
                assert!(c.noop().await.is_err(), "unusable after an unproven 235");
                c.close().await;
            }
        }
    });
}

#[test]
fn blocking_rfc7677_exchange() {
    blocking(Ending::Proof);
}

#[test]
fn blocking_forged_server_signature() {
    blocking(Ending::Forged);
}

#[test]
fn blocking_success_without_proof() {
    blocking(Ending::NoProof);
}

#[test]
fn tokio_rfc7677_exchange() {
    tokio(Ending::Proof);
}

#[test]
fn tokio_forged_server_signature() {
    tokio(Ending::Forged);
}

#[test]
fn tokio_success_without_proof() {
    tokio(Ending::NoProof);
}
