//! Shared support for the interop tests against real servers (see
//! `tests/interop/README.md`): the servers, both adapters behind one
//! interface, the message corpus, and the spools.

pub(crate) mod adapters;
pub(crate) mod corpus;
pub(crate) mod servers;
pub(crate) mod spool;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use smtp_sansio::{Error as SmtpError, Reply};

use adapters::{Adapter, AdapterError, Creds, Opts, Session};
use servers::{Env, Mech, Server};

/// Defines one interop case that runs on both adapters:
///
/// ```ignore
/// interop! {
///     fn plain_text(a) { /* a: &dyn Adapter */ }
/// }
/// ```
///
/// expands to `mod plain_text { fn blocking(); fn tokio(); }`, so the test
/// names read `server::case::adapter`.
macro_rules! interop {
    ($( $(#[doc = $doc:literal])* fn $name:ident($a:ident) $body:block )*) => {$(
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn case($a: &dyn $crate::interop_common::adapters::Adapter) $body

            #[test]
            fn blocking() {
                case(&$crate::interop_common::adapters::Blocking)
            }

            #[test]
            fn tokio() {
                case(&$crate::interop_common::adapters::Tokio)
            }
        }
    )*};
}

/// The running test's name (libtest names the thread after it).
pub(crate) fn test_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// A local part no other test uses, in this run or an earlier one against
/// the same spool: `tag.RUN.N`.
pub(crate) fn unique(tag: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static N: AtomicU32 = AtomicU32::new(0);
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut v = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
        let mut s = String::new();
        for _ in 0..8 {
            let d = (v % 36) as u8;
            s.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
            v /= 36;
        }
        s
    });
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag.chars().take(28).collect();
    format!("{tag}.{run}.{n}")
}

/// The credentials of the test user.
pub(crate) fn creds(env: &Env, mech: Mech) -> Creds {
    Creds {
        mech,
        user: env.user.clone(),
        secret: env.password.clone(),
    }
}

/// Options for `srv`: LMTP for the LMTP servers, the CA's trust.
pub(crate) fn opts(srv: &Server, env: &Env) -> Opts {
    let mut o = Opts::new(env.tls.clone());
    o.lmtp = srv.kind.lmtp();
    o
}

/// Connects (implicit TLS where the server wants it) and says hello.
pub(crate) fn connect(a: &dyn Adapter, srv: &Server, opts: &Opts) -> Box<dyn Session> {
    let s = if srv.kind.implicit_tls() {
        a.connect_tls(&srv.addr, opts)
    } else {
        a.connect(&srv.addr, opts)
    };
    let mut s = s.unwrap_or_else(|e| panic!("{}: connect {}: {e}", a.name(), srv.addr));
    s.hello(&opts.local_name)
        .unwrap_or_else(|e| panic!("{}: hello: {e}", a.name()));
    s
}

/// Connects, says hello, upgrades with STARTTLS where offered and
/// authenticates with `mech`.
pub(crate) fn open_with(
    a: &dyn Adapter,
    srv: &Server,
    env: &Env,
    opts: &Opts,
    mech: Option<Mech>,
) -> Box<dyn Session> {
    let mut s = connect(a, srv, opts);
    if srv.kind.starttls() {
        s.starttls()
            .unwrap_or_else(|e| panic!("{}: STARTTLS: {e}", a.name()));
    }
    if srv.kind.starttls() || srv.kind.implicit_tls() {
        assert!(s.tls_active(), "{}: TLS not active", a.name());
    }
    if let Some(m) = mech {
        s.auth(&creds(env, m), srv.host())
            .unwrap_or_else(|e| panic!("{}: AUTH {}: {e}", a.name(), m.name()));
    }
    s
}

/// The usual session: TLS where offered, AUTH PLAIN where the server checks
/// credentials.
pub(crate) fn open(a: &dyn Adapter, srv: &Server, env: &Env, opts: &Opts) -> Box<dyn Session> {
    let mech = srv.kind.mechanisms().first().copied();
    open_with(a, srv, env, opts, mech)
}

/// Compares stored bytes with the expected ones; on a mismatch, reports the
/// lengths and the first difference with context, not megabytes of bytes.
pub(crate) fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let from = first.saturating_sub(60);
    let show = |b: &[u8]| {
        let end = (first + 60).min(b.len());
        format!("{:?}", String::from_utf8_lossy(&b[from.min(end)..end]))
    };
    panic!(
        "{what}: stored bytes differ from the sent ones\n  \
         stored {} bytes, expected {} bytes, first difference at offset {first}\n  \
         stored   [{from}..]: {}\n  \
         expected [{from}..]: {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// The reply of a refusal, or a panic naming what came instead.
pub(crate) fn rejected(r: &AdapterError, command: smtp_sansio::CommandKind) -> &Reply {
    match r {
        AdapterError::Smtp(SmtpError::Rejected(rej)) if rej.command == command => &rej.reply,
        other => panic!("expected the server's refusal of {command}, got {other:?}"),
    }
}

/// Asserts a reply's code and enhanced code. Without ENHANCEDSTATUSCODES
/// advertised the enhanced code is not parsed (RFC 2034), so then it must
/// lead the text instead.
pub(crate) fn assert_reply(reply: &Reply, code: u16, enhanced: &str, advertised: bool) {
    assert_eq!(reply.code().get(), code, "reply {reply:?}");
    if advertised {
        assert_eq!(
            reply.enhanced_code().map(|c| c.to_string()).as_deref(),
            Some(enhanced),
            "enhanced code of {reply:?}"
        );
    } else {
        assert!(
            reply.text().starts_with(enhanced),
            "{reply:?} should start with {enhanced}"
        );
    }
}
