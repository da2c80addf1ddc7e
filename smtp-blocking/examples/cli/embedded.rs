//! The embedded default: an in-process loopback SMTP server (the test
//! crate's `MiniSmtpServer`) with a certificate generated on the fly.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use smtp_tests::{CertVariant, MiniOptions, MiniSmtpServer, StartTlsPolicy, TestPki};

use super::{Out, TlsMode};

/// A running embedded server and how to reach it.
pub(crate) struct Embedded {
    server: MiniSmtpServer,
    /// `localhost:PORT`.
    pub(crate) addr: String,
    /// A TLS client config trusting only the CA that signed the server's
    /// certificate.
    pub(crate) tls_config: Arc<ClientConfig>,
}

impl Embedded {
    /// Starts a server that speaks `tls` the way the client will (STARTTLS
    /// required for `starttls`, offered for `opportunistic`, TLS on connect
    /// for `implicit`), offers AUTH `mechanism` only over TLS (or at all for
    /// `none`), accepts exactly `user`/`password`, and requires AUTH before
    /// MAIL when `mechanism` is set.
    pub(crate) fn start(
        tls: TlsMode,
        lmtp: bool,
        mechanism: Option<&str>,
        user: &str,
        password: &str,
    ) -> Self {
        let pki = TestPki::get();
        let mut options = MiniOptions {
            hostname: "mx.localhost".into(),
            lmtp,
            auth_mechanisms: mechanism.map(str::to_owned).into_iter().collect(),
            credentials: vec![(user.to_owned(), password.to_owned())],
            auth_required: mechanism.is_some(),
            auth_requires_tls: tls != TlsMode::None,
            ..MiniOptions::default()
        };
        // DATA rather than BDAT, so the demo shows the classic exchange and
        // PIPELINING's MAIL/RCPT/DATA group.
        options.capabilities.retain(|c| c != "CHUNKING");
        match tls {
            TlsMode::Starttls => options.starttls = StartTlsPolicy::Require(CertVariant::Valid),
            TlsMode::Opportunistic => options.starttls = StartTlsPolicy::Offer(CertVariant::Valid),
            TlsMode::Implicit => options.implicit_tls = Some(CertVariant::Valid),
            TlsMode::None => {}
        }
        options.server.io_timeout = Duration::from_secs(30);
        let server = MiniSmtpServer::start(options);
        let addr = format!("localhost:{}", server.port());
        let tls_config = smtp_blocking::tls_config_with_roots(pki.client_root_store());
        Self {
            server,
            addr,
            tls_config,
        }
    }

    /// Prints what the server stored: the envelope, then the message bytes.
    pub(crate) fn print_received(self, out: &Out) {
        let messages = self.server.wait_for_messages(1, Duration::from_secs(5));
        for m in &messages {
            out.line("");
            out.line("--- the message as the embedded server received it ---");
            let mut facts = vec![if m.tls { "over TLS" } else { "in plaintext" }.to_owned()];
            if let Some(user) = &m.auth_user {
                facts.push(format!("authenticated as {user:?}"));
            }
            facts.push(
                if m.via_bdat {
                    "body by BDAT"
                } else {
                    "body by DATA"
                }
                .into(),
            );
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
            out.write_str(&m.text().replace("\r\n", "\n"));
            out.line("--- end of message ---");
        }
        if messages.is_empty() {
            out.line("(the embedded server stored no message)");
        }
        self.server.finish();
    }

    /// Stops the server.
    pub(crate) fn stop(self) {
        self.server.finish();
    }
}
