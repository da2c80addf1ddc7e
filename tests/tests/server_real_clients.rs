//! Real SMTP clients nobody here wrote, against our server (the core's
//! `Server` behind `smtp_blocking::server::SmtpServer` and
//! `smtp_tokio::server::SmtpServer`): swaks, Python's smtplib, Postfix's
//! smtp-source and nodemailer. Each case checks the client's own verdict
//! and what the server's application received.
//!
//! The clients come from `tests/interop/install.sh`, so these tests are
//! compiled where the interop servers are (`tests/build.rs`).

#![cfg(interop_servers)]
// Test setup that fails should fail the test, helpers included.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use smtp_blocking::server::{
    Credentials, Handler, Response, ServerConfig, ServerMechanism, SmtpServer, Transaction,
};
use smtp_tests::certs::{CertVariant, pki};

/// A message as the application saw it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    body: Vec<u8>,
    user: Option<String>,
}

type Store = Arc<Mutex<Vec<Received>>>;

/// Keeps every message; knows one user (alice / secret, CRAM-MD5 too).
struct Keep {
    store: Store,
    body: Vec<u8>,
    user: Option<String>,
}

impl Handler for Keep {
    fn auth(&mut self, credentials: &Credentials) -> Response {
        if credentials.verify_password("alice", "secret") || credentials.verify_cram_md5("secret") {
            self.user = Some(credentials.username().to_string());
            Response::accept()
        } else {
            Response::refuse(
                smtp_sansio::ReplyCode::new(535).unwrap(),
                smtp_sansio::EnhancedCode::new(5, 7, 8),
                "Authentication credentials invalid",
            )
        }
    }
    fn body(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }
    fn message(&mut self, t: &Transaction) -> Response {
        self.store.lock().unwrap().push(Received {
            from: t.from.as_str().to_string(),
            to: t
                .recipients
                .iter()
                .map(|(m, _)| m.as_str().to_string())
                .collect(),
            body: std::mem::take(&mut self.body),
            user: self.user.clone(),
        });
        Response::accept_with("queued")
    }
    fn reset(&mut self) {
        self.body.clear();
    }
    fn aborted(&mut self, _: smtp_blocking::server::AbortReason) {
        self.body.clear();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Adapter {
    Blocking,
    Tokio,
}

/// Starts a server on a free loopback port, serving until the test
/// process ends.
fn start(adapter: Adapter, config: ServerConfig, tls: bool) -> (SocketAddr, Store) {
    start_with(
        adapter,
        config,
        if tls {
            Security::StartTls
        } else {
            Security::Plaintext
        },
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Security {
    Plaintext,
    StartTls,
    Implicit,
}

fn start_with(adapter: Adapter, config: ServerConfig, tls: Security) -> (SocketAddr, Store) {
    let store: Store = Arc::default();
    let keep = {
        let store = Arc::clone(&store);
        move |_| Keep {
            store: Arc::clone(&store),
            body: Vec::new(),
            user: None,
        }
    };
    let tls_config = pki().server_config(CertVariant::Valid);
    match adapter {
        Adapter::Blocking => {
            let mut server = SmtpServer::bind("127.0.0.1:0", config).unwrap();
            server = match tls {
                Security::Plaintext => server,
                Security::StartTls => server.with_starttls(tls_config),
                Security::Implicit => server.with_implicit_tls(tls_config),
            };
            let addr = server.local_addr().unwrap();
            std::thread::spawn(move || server.serve(keep));
            (addr, store)
        }
        Adapter::Tokio => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut server = smtp_tokio::server::SmtpServer::bind("127.0.0.1:0", config)
                        .await
                        .unwrap();
                    server = match tls {
                        Security::Plaintext => server,
                        Security::StartTls => server.with_starttls(tls_config),
                        Security::Implicit => server.with_implicit_tls(tls_config),
                    };
                    tx.send(server.local_addr().unwrap()).unwrap();
                    let _ = server.serve(keep).await;
                });
            });
            (rx.recv().unwrap(), store)
        }
    }
}

fn submission() -> ServerConfig {
    ServerConfig::new("localhost")
        .with_auth(&[
            ServerMechanism::Plain,
            ServerMechanism::Login,
            ServerMechanism::CramMd5,
        ])
        .with_require_auth(true)
}

fn ca_file() -> &'static Path {
    static CA: OnceLock<PathBuf> = OnceLock::new();
    CA.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("smtp-tests-ca-{}.pem", std::process::id()));
        pki().write_ca_pem(&path).unwrap();
        path
    })
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn one(store: &Store) -> Received {
    let all = store.lock().unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn swaks(addr: SocketAddr, extra: &[&str]) -> Output {
    run(Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--from", "sender@example.com", "--to", "rcpt@example.com"])
        .args(["--body", "hello from swaks\n..dot line\n"])
        .args(["--timeout", "20"])
        .args(extra))
}

macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn blocking() {
                ($body)(Adapter::Blocking)
            }
            #[test]
            fn tokio() {
                ($body)(Adapter::Tokio)
            }
        }
    };
}

both!(swaks_plain, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    swaks(addr, &[]);
    let m = one(&store);
    assert_eq!(m.from, "sender@example.com");
    assert_eq!(m.to, ["rcpt@example.com"]);
    assert!(
        contains(&m.body, "hello from swaks\r\n..dot line\r\n"),
        "{:?}",
        String::from_utf8_lossy(&m.body)
    );
});

both!(swaks_pipelining, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    swaks(addr, &["--pipeline"]);
    assert!(contains(&one(&store).body, "hello from swaks"));
});

both!(swaks_starttls_auth_plain, |a| {
    let (addr, store) = start(a, submission(), true);
    swaks(
        addr,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "secret",
        ],
    );
    assert_eq!(one(&store).user.as_deref(), Some("alice"));
});

both!(swaks_starttls_auth_login, |a| {
    let (addr, store) = start(a, submission(), true);
    swaks(
        addr,
        &[
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "secret",
        ],
    );
    assert_eq!(one(&store).user.as_deref(), Some("alice"));
});

both!(swaks_starttls_auth_cram_md5, |a| {
    let (addr, store) = start(a, submission(), true);
    swaks(
        addr,
        &[
            "--tls",
            "--auth",
            "CRAM-MD5",
            "--auth-user",
            "alice",
            "--auth-password",
            "secret",
        ],
    );
    assert_eq!(one(&store).user.as_deref(), Some("alice"));
});

both!(swaks_implicit_tls_auth_plain, |a| {
    let (addr, store) = start_with(a, submission(), Security::Implicit);
    swaks(
        addr,
        &[
            "--tls-on-connect",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "secret",
        ],
    );
    assert_eq!(one(&store).user.as_deref(), Some("alice"));
});

both!(swaks_wrong_password_is_refused, |a| {
    let (addr, store) = start(a, submission(), true);
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--from", "s@example.com", "--to", "r@example.com", "--tls"])
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("535 5.7.8"));
    assert!(store.lock().unwrap().is_empty());
});

both!(swaks_lmtp, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost").with_lmtp(true), false);
    swaks(addr, &["--protocol", "LMTP"]);
    assert!(contains(&one(&store).body, "hello from swaks"));
});

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = EmailMessage()
msg["From"] = "py@example.com"
msg["To"] = "one@example.com, two@example.com"
msg["Subject"] = "smtplib"
msg.set_content("hello from smtplib\n.leading dot\n")
if mode == "lmtp":
    # One recipient: smtplib's LMTP reads one reply after DATA, not one per
    # recipient (RFC 2033 §4.2), so a second would be read as QUIT's.
    del msg["To"]
    msg["To"] = "one@example.com"
    with smtplib.LMTP("127.0.0.1", port) as s:
        refused = s.send_message(msg)
elif mode == "utf8":
    del msg["To"]
    msg["To"] = "用户@例子.广告"
    with smtplib.SMTP("127.0.0.1", port) as s:
        refused = s.send_message(msg, mail_options=["SMTPUTF8"])
else:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.starttls(context=ssl.create_default_context(cafile=ca))
        s.login("alice", "secret")
        refused = s.send_message(msg)
        try:
            s.sendmail("py@example.com", ["nobody@example.com"], "x", mail_options=["FOO=1"])
            sys.exit("unknown parameter accepted")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 555, e
assert refused == {}, refused
print("ok")
"#;

fn smtplib(addr: SocketAddr, mode: &str) {
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(SMTPLIB)
        .arg(addr.port().to_string())
        .arg(ca_file())
        .arg(mode));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

both!(smtplib_starttls_login, |a| {
    let (addr, store) = start(a, submission(), true);
    smtplib(addr, "tls");
    let m = one(&store);
    assert_eq!(m.to, ["one@example.com", "two@example.com"]);
    assert_eq!(m.user.as_deref(), Some("alice"));
    assert!(
        contains(&m.body, "hello from smtplib\r\n..leading dot\r\n")
            || contains(&m.body, "hello from smtplib\r\n.leading dot\r\n")
    );
});

both!(smtplib_lmtp, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost").with_lmtp(true), false);
    smtplib(addr, "lmtp");
    assert_eq!(one(&store).to, ["one@example.com"]);
});

both!(smtplib_smtputf8, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    smtplib(addr, "utf8");
    assert_eq!(one(&store).to, ["用户@例子.广告"]);
});

fn smtp_source(addr: SocketAddr, args: &[&str], messages: usize) {
    run(Command::new("smtp-source")
        .args([
            "-m",
            &messages.to_string(),
            "-l",
            "2048",
            "-f",
            "src@example.com",
            "-t",
            "dst@example.com",
        ])
        .args(args)
        .arg(format!("127.0.0.1:{}", addr.port())));
}

both!(smtp_source_many_messages_and_sessions, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    smtp_source(addr, &["-s", "4"], 200);
    let all = store.lock().unwrap();
    assert_eq!(all.len(), 200);
    assert!(
        all.iter()
            .all(|m| m.from == "src@example.com" && m.body.len() >= 2048)
    );
});

both!(smtp_source_one_session_and_lmtp, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    smtp_source(addr, &["-d", "-s", "1"], 50);
    assert_eq!(store.lock().unwrap().len(), 50);
    let (addr, store) = start(a, ServerConfig::new("localhost").with_lmtp(true), false);
    smtp_source(addr, &["-L", "-s", "1"], 20);
    assert_eq!(store.lock().unwrap().len(), 20);
});

const NODEMAILER: &str = r#"
const nodemailer = require("nodemailer");
const fs = require("fs");
const [port, ca, mode] = process.argv.slice(1);
const t = nodemailer.createTransport({
  host: "127.0.0.1", port: Number(port), secure: false,
  requireTLS: mode === "tls", ignoreTLS: mode !== "tls",
  tls: { ca: [fs.readFileSync(ca)], servername: "localhost" },
  auth: mode === "tls" ? { user: "alice", pass: "secret" } : undefined,
  name: "client.example",
});
t.sendMail({
  from: "node@example.com", to: ["one@example.com", "two@example.com"],
  subject: "nodemailer", text: "hello from nodemailer\n.dot\n",
}).then((info) => {
  if (info.rejected.length) throw new Error("rejected " + info.rejected);
  console.log("ok");
}).catch((e) => { console.error(e); process.exit(1); });
"#;

fn nodemailer(addr: SocketAddr, mode: &str) {
    let out = run(Command::new("node")
        .current_dir(interop_dir())
        .arg("-e")
        .arg(NODEMAILER)
        .arg(addr.port().to_string())
        .arg(ca_file())
        .arg(mode));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

both!(nodemailer_starttls_auth, |a| {
    let (addr, store) = start(a, submission(), true);
    nodemailer(addr, "tls");
    let m = one(&store);
    assert_eq!(m.user.as_deref(), Some("alice"));
    assert!(contains(&m.body, "hello from nodemailer"));
});

both!(nodemailer_plain, |a| {
    let (addr, store) = start(a, ServerConfig::new("localhost"), false);
    nodemailer(addr, "plain");
    assert_eq!(one(&store).to, ["one@example.com", "two@example.com"]);
});
