//! The embedded default: the in-process loopback demo server
//! ([`demo_server`](super::demo_server)) and what the client needs to
//! reach and trust it.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use super::demo_server::{DemoOptions, DemoServer, DemoTls};
use super::{Out, TlsMode};

/// A running embedded server and how to reach it.
pub(crate) struct Embedded {
    server: DemoServer,
    /// `localhost:PORT`.
    pub(crate) addr: String,
    /// A TLS client config trusting only the CA that signed the server's
    /// certificate.
    pub(crate) tls_config: Arc<ClientConfig>,
}

impl Embedded {
    /// Starts a server that speaks `tls` the way the client will (STARTTLS
    /// required for `starttls`, offered for `opportunistic`, TLS on connect
    /// for `implicit`), offers AUTH `mechanism` (PLAIN or LOGIN) only over
    /// TLS (or at all for `none`), accepts exactly `user`/`password`, and
    /// requires AUTH before MAIL when `mechanism` is set.
    pub(crate) fn start(
        tls: TlsMode,
        lmtp: bool,
        mechanism: Option<&'static str>,
        user: &str,
        password: &str,
    ) -> Result<Self, String> {
        let tls = match tls {
            TlsMode::Starttls => DemoTls::RequireStarttls,
            TlsMode::Opportunistic => DemoTls::OfferStarttls,
            TlsMode::Implicit => DemoTls::Implicit,
            TlsMode::None => DemoTls::None,
        };
        let server = DemoServer::start(DemoOptions {
            tls,
            lmtp,
            mechanism,
            user: user.to_owned(),
            password: password.to_owned(),
        })?;
        let addr = format!("localhost:{}", server.port());
        let mut roots = RootCertStore::empty();
        roots
            .add(server.ca())
            .map_err(|e| format!("trusting the demo CA: {e}"))?;
        let tls_config = smtp_blocking::tls_config_with_roots(roots);
        Ok(Self {
            server,
            addr,
            tls_config,
        })
    }

    /// Prints what the server stored: the envelope, then the message bytes.
    pub(crate) fn print_received(self, out: &Out) {
        let messages = self.server.messages();
        for m in &messages {
            out.line("");
            out.line("--- the message as the embedded server received it ---");
            let mut facts = vec![if m.tls { "over TLS" } else { "in plaintext" }.to_owned()];
            if let Some(user) = &m.auth_user {
                facts.push(format!("authenticated as {user:?}"));
            }
            facts.push("body by DATA".into());
            out.line(&format!("connection: {}", facts.join(", ")));
            out.line(&format!("HELO name:  {}", m.helo));
            let params = |p: &[String]| p.iter().map(|p| format!(" {p}")).collect::<String>();
            out.line(&format!(
                "MAIL FROM:<{}>{}",
                m.mail_from,
                params(&m.mail_params)
            ));
            for (rcpt, p) in m.rcpt_to.iter().zip(&m.rcpt_params) {
                out.line(&format!("RCPT TO:<{rcpt}>{}", params(p)));
            }
            out.line(&format!("message ({} bytes):", m.data.len()));
            // The program's own message, as it went out.
            out.write_str(&String::from_utf8_lossy(&m.data).replace("\r\n", "\n"));
            out.line("--- end of message ---");
        }
        if messages.is_empty() {
            out.line("(the embedded server stored no message)");
        }
    }

    /// Stops the server.
    pub(crate) fn stop(self) {
        drop(self.server);
    }
}
