//! Throw-away test PKI generated at run time with rcgen.
//!
//! One CA and a set of server identities (a good `localhost` leaf and several bad ones for
//! hostile tests) are generated once per process ([`TestPki::get`]). Nothing here is ever
//! written to the repository; [`Identity::write_pem`] can put files in a temporary directory
//! for third-party servers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The host names and addresses the good leaf certificate is valid for.
pub const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The only name in the [`CertVariant::WrongHost`] certificate.
pub const WRONG_HOST_NAME: &str = "wrong.example";

/// Which server identity a TLS handshake presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertVariant {
    /// Leaf for `localhost`, `127.0.0.1` and `::1`, signed by the test CA. Verifies.
    Valid,
    /// Self-signed leaf (no CA) for the right names. Must be rejected by a verifying client.
    SelfSigned,
    /// Leaf signed by the test CA, but only for `wrong.example`. Must be rejected.
    WrongHost,
    /// Leaf signed by the test CA for the right names whose validity ended in 2001.
    Expired,
    /// The CA certificate itself used as the end-entity certificate. Must be rejected
    /// (webpki refuses a CA certificate as an end-entity certificate).
    CaAsLeaf,
}

impl CertVariant {
    /// Every variant, for table-driven tests.
    pub const ALL: [CertVariant; 5] = [
        CertVariant::Valid,
        CertVariant::SelfSigned,
        CertVariant::WrongHost,
        CertVariant::Expired,
        CertVariant::CaAsLeaf,
    ];
}

/// A certificate chain plus its private key, in DER and PEM.
#[derive(Debug)]
pub struct Identity {
    /// The chain the server sends, end-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The same chain as PEM.
    pub chain_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl Identity {
    /// The private key as a rustls key.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Writes `<stem>.crt` (chain) and `<stem>.key` into `dir`; returns both paths.
    pub fn write_pem(&self, dir: &Path, stem: &str) -> std::io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.chain_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// The generated test PKI: a CA and one [`Identity`] per [`CertVariant`].
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate (DER). Clients trust this.
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The good leaf ([`CertVariant::Valid`]).
    pub leaf: Identity,
    /// [`CertVariant::SelfSigned`].
    pub self_signed: Identity,
    /// [`CertVariant::WrongHost`].
    pub wrong_host: Identity,
    /// [`CertVariant::Expired`].
    pub expired: Identity,
    /// [`CertVariant::CaAsLeaf`].
    pub ca_as_leaf: Identity,
    server_configs: Vec<(CertVariant, Arc<ServerConfig>)>,
}

static PKI: OnceLock<TestPki> = OnceLock::new();

/// The ring crypto provider used by every config built here.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Shorthand for [`TestPki::get`].
pub fn pki() -> &'static TestPki {
    TestPki::get()
}

/// Shorthand for `TestPki::get().client_config()`: a client config trusting only the test CA.
pub fn client_config() -> Arc<ClientConfig> {
    TestPki::get().client_config()
}

/// Shorthand for `TestPki::get().server_config(variant)`.
pub fn server_config(variant: CertVariant) -> Arc<ServerConfig> {
    TestPki::get().server_config(variant)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "smtp-tests throw-away PKI");
    dn
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn leaf_params(sans: &[&str], cn: &str) -> CertificateParams {
    #[allow(clippy::expect_used)]
    let mut p = CertificateParams::new(names(sans)).expect("valid SANs");
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2099, 1, 1);
    p
}

fn identity(cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        chain: vec![cert.der().clone()],
        chain_pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}

impl TestPki {
    /// The process-wide PKI, generated on first use.
    pub fn get() -> &'static TestPki {
        PKI.get_or_init(TestPki::generate)
    }

    /// Generates a fresh, independent PKI (a different CA). Useful to get a certificate that
    /// the process-wide CA does not vouch for. Panics if rcgen fails.
    #[allow(clippy::expect_used)]
    pub fn generate() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name = dn("smtp-tests throw-away CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = date_time_ymd(2020, 1, 1);
        ca_params.not_after = date_time_ymd(2099, 1, 1);
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");

        let signed = |params: CertificateParams| {
            let key = KeyPair::generate().expect("leaf key");
            let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
            identity(&cert, &key)
        };

        let leaf = signed(leaf_params(&LEAF_NAMES, "localhost"));
        let wrong_host = signed(leaf_params(&[WRONG_HOST_NAME], WRONG_HOST_NAME));
        let mut expired_params = leaf_params(&LEAF_NAMES, "localhost");
        expired_params.not_before = date_time_ymd(2000, 1, 1);
        expired_params.not_after = date_time_ymd(2001, 1, 1);
        let expired = signed(expired_params);

        let self_signed = {
            let key = KeyPair::generate().expect("self-signed key");
            let cert = leaf_params(&LEAF_NAMES, "localhost")
                .self_signed(&key)
                .expect("self-signed cert");
            identity(&cert, &key)
        };
        let ca_as_leaf = identity(&ca, &ca_key);

        let mut pki = TestPki {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            leaf,
            self_signed,
            wrong_host,
            expired,
            ca_as_leaf,
            server_configs: Vec::new(),
        };
        pki.server_configs = CertVariant::ALL
            .iter()
            .map(|&v| (v, pki.build_server_config(v)))
            .collect();
        pki
    }

    /// The identity a server presents for `variant`.
    pub fn identity(&self, variant: CertVariant) -> &Identity {
        match variant {
            CertVariant::Valid => &self.leaf,
            CertVariant::SelfSigned => &self.self_signed,
            CertVariant::WrongHost => &self.wrong_host,
            CertVariant::Expired => &self.expired,
            CertVariant::CaAsLeaf => &self.ca_as_leaf,
        }
    }

    #[allow(clippy::expect_used)]
    fn build_server_config(&self, variant: CertVariant) -> Arc<ServerConfig> {
        let id = self.identity(variant);
        Self::server_config_for(id).expect("server config for generated identity")
    }

    /// A rustls server config (ring, TLS 1.2 + 1.3, no client auth) presenting `variant`.
    /// Cached: cheap to call per connection.
    pub fn server_config(&self, variant: CertVariant) -> Arc<ServerConfig> {
        self.server_configs
            .iter()
            .find(|(v, _)| *v == variant)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| self.build_server_config(variant))
    }

    fn server_config_for(id: &Identity) -> Result<Arc<ServerConfig>, rustls::Error> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(id.chain.clone(), id.key())?;
        Ok(Arc::new(config))
    }

    /// A server config presenting `variant` that only speaks TLS 1.2.
    #[allow(clippy::expect_used)]
    pub fn server_config_tls12_only(&self, variant: CertVariant) -> Arc<ServerConfig> {
        let id = self.identity(variant);
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2 supported by ring provider")
            .with_no_client_auth()
            .with_single_cert(id.chain.clone(), id.key())
            .expect("server config for generated identity");
        Arc::new(config)
    }

    /// A root store holding only the test CA.
    #[allow(clippy::expect_used)]
    pub fn client_root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .expect("test CA is a valid trust anchor");
        roots
    }

    /// A verifying rustls client config (ring provider, safe default versions, no client
    /// auth) that trusts only the test CA.
    #[allow(clippy::expect_used)]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(self.client_root_store())
            .with_no_client_auth();
        Arc::new(config)
    }

    /// Writes the CA certificate as PEM to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }
}
