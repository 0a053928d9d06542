//! The one way to build an HTTP client: ring as the TLS crypto provider, and one TLS configuration (the
//! platform's root certificates, parsed once per process) shared by every client.

use std::sync::{Once, OnceLock};

/// Installs ring as the process-wide rustls crypto provider; later calls do nothing.
pub fn install_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider was installed first, which serves just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The shared TLS configuration, or `None` when the platform's roots cannot be loaded (reqwest then reports
/// the same problem when the client is built).
fn shared_tls() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_tls_provider();
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier().ok()
        })
        .clone()
}

/// A `reqwest` client builder with the shared TLS configuration; every client devatar builds starts here.
/// (Building the root store per client cost more CPU than the requests themselves.)
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    let builder = reqwest::Client::builder();
    match shared_tls() {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn clients_built_from_the_shared_configuration_work() {
        let a = super::client_builder().build();
        let b = super::client_builder().build();
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        assert!(super::shared_tls().is_some(), "the platform's roots load");
    }
}
