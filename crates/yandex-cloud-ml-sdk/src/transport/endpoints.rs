//! Where each service lives: overrides, endpoint discovery and one HTTP/2 channel per address.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::OnceCell;

use super::{
    channel::{Channel, Connector},
    rpc::Service,
};
use crate::error::{Error, Result};

/// Discovery root of the public cloud.
pub(crate) const DEFAULT_DISCOVERY_ENDPOINT: &str = "api.cloud.yandex.net:443";

/// How connections are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Tls {
    /// TLS with the Mozilla root set (plus any CA added with
    /// [`SdkBuilder::ca_certificate_pem`](crate::SdkBuilder::ca_certificate_pem)). The default.
    #[default]
    Enabled,
    /// Plaintext HTTP/2, allowed only to loopback addresses (`localhost`, `127.0.0.0/8`, `::1`),
    /// e.g. the local emulator.
    PlaintextLoopbackOnly,
    /// Plaintext HTTP/2 to any address. Credentials travel unencrypted: only for trusted networks.
    PlaintextInsecure,
}

/// Everything needed to reach the services.
#[derive(Debug, Clone)]
pub(crate) struct EndpointConfig {
    /// Discovery root; `None` disables discovery (then every service needs an override).
    pub discovery: Option<String>,
    /// Per-service-id address overrides.
    pub overrides: HashMap<String, String>,
    /// Every service at this one address (the emulator, a proxy).
    pub all_services: Option<String>,
    pub tls: Tls,
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

/// Resolves services to channels; channels are shared by address and connect on first use.
pub(crate) struct Endpoints {
    config: EndpointConfig,
    connector: Connector,
    discovered: OnceCell<HashMap<String, String>>,
    by_service: [OnceCell<Channel>; Service::COUNT],
    by_address: Mutex<HashMap<String, Channel>>,
}

impl Endpoints {
    pub(crate) fn new(config: EndpointConfig) -> Result<Arc<Endpoints>> {
        let tls = rustls_config(config.ca_pem.as_deref())?;
        let connector = Connector::new(tls, config.connect_timeout, &config.user_agent)?;
        Ok(Arc::new(Endpoints {
            config,
            connector,
            discovered: OnceCell::new(),
            by_service: Default::default(),
            by_address: Mutex::new(HashMap::new()),
        }))
    }

    /// Checks the configuration without touching the network.
    pub(crate) fn validate(config: &EndpointConfig) -> Result<()> {
        // With one address for everything, overrides and discovery are never consulted.
        let addresses: Vec<&String> = match &config.all_services {
            Some(all) => vec![all],
            None => config.overrides.values().chain(config.discovery.iter()).collect(),
        };
        for addr in addresses {
            parse_address(addr)?;
            check_plaintext_allowed(config.tls, addr)?;
        }
        Ok(())
    }

    /// The channel of `service`, running discovery first if it is needed and not yet done.
    /// `discover` performs the `ApiEndpointService/List` call on the discovery channel.
    pub(crate) async fn channel<F, Fut>(&self, service: Service, discover: F) -> Result<Channel>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<HashMap<String, String>>>,
    {
        let cell = &self.by_service[service as usize];
        if let Some(ch) = cell.get() {
            return Ok(ch.clone());
        }
        cell.get_or_try_init(|| async {
            let address = self.address(service, discover).await?;
            self.channel_for(&address)
        })
        .await
        .cloned()
    }

    async fn address<F, Fut>(&self, service: Service, discover: F) -> Result<String>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<HashMap<String, String>>>,
    {
        if let Some(all) = &self.config.all_services {
            return Ok(all.clone());
        }
        if let Some(addr) = self.config.overrides.get(service.id()) {
            return Ok(addr.clone());
        }
        let Some(root) = &self.config.discovery else {
            return Err(Error::configuration(format!(
                "endpoint discovery is disabled, so the `{}` service needs an address",
                service.id()
            ))
            .with_remedy(crate::error::Remedy::SetServiceEndpoint { service: service.id().to_owned() }));
        };
        if service == Service::Endpoint {
            return Ok(root.clone());
        }
        let root_channel = self.channel_for(root)?;
        let table = self.discovered.get_or_try_init(|| discover(root_channel)).await?;
        table.get(service.id()).cloned().ok_or_else(|| {
            Error::configuration(format!(
                "endpoint discovery at {root} returned no address for `{}`; set it with \
                 SdkBuilder::service_endpoint",
                service.id()
            ))
        })
    }

    /// The one channel to `address`, shared by every service that lives there: plaintext where
    /// the policy allows it, TLS otherwise.
    fn channel_for(&self, address: &str) -> Result<Channel> {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(channel) = map.get(address) {
            return Ok(channel.clone());
        }
        parse_address(address)?;
        let plaintext = check_plaintext_allowed(self.config.tls, address)?;
        let channel = self.connector.channel(if plaintext { "http" } else { "https" }, address)?;
        map.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// The TLS settings of every connection the SDK makes: rustls with ring, the Mozilla roots and
/// the extra CA the user added, if any.
pub(crate) fn rustls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_pem {
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| Error::configuration(format!("the extra CA certificate is not valid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::configuration(format!("the extra CA certificate cannot be used: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::configuration(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Splits `host:port` (IPv6 in brackets), rejecting URLs and missing ports with a hint.
pub(crate) fn parse_address(address: &str) -> Result<(&str, u16)> {
    let hint = || {
        Error::configuration(format!(
            "endpoint `{address}` must be `host:port` (e.g. `llm.api.cloud.yandex.net:443` or `127.0.0.1:50051`), without a scheme"
        ))
    };
    if address.contains("://") || address.contains('/') {
        return Err(hint());
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(hint)?;
    let port: u16 = port.parse().map_err(|_| hint())?;
    if host.is_empty() {
        return Err(hint());
    }
    Ok((host, port))
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Returns whether to use plaintext for `address`, or an error if plaintext is configured but
/// not allowed there.
fn check_plaintext_allowed(tls: Tls, address: &str) -> Result<bool> {
    match tls {
        Tls::Enabled => Ok(false),
        Tls::PlaintextInsecure => Ok(true),
        Tls::PlaintextLoopbackOnly => {
            let (host, _) = parse_address(address)?;
            if is_loopback(host) {
                Ok(true)
            } else {
                Err(Error::configuration(format!(
                    "plaintext connections are only allowed to loopback addresses, not `{address}`; \
                     use Tls::Enabled, or Tls::PlaintextInsecure if you really mean it"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_host_port() {
        assert_eq!(parse_address("llm.api.cloud.yandex.net:443").unwrap(), ("llm.api.cloud.yandex.net", 443));
        assert_eq!(parse_address("[::1]:8080").unwrap(), ("[::1]", 8080));
        for bad in ["https://x:1", "x", "x:port", ":1", "x:1/path"] {
            let e = parse_address(bad).unwrap_err();
            assert!(e.to_string().contains("host:port"), "{bad}: {e}");
        }
    }

    #[test]
    fn plaintext_only_to_loopback_unless_insecure() {
        assert!(check_plaintext_allowed(Tls::PlaintextLoopbackOnly, "127.0.0.1:1").unwrap());
        assert!(check_plaintext_allowed(Tls::PlaintextLoopbackOnly, "localhost:1").unwrap());
        assert!(check_plaintext_allowed(Tls::PlaintextLoopbackOnly, "[::1]:1").unwrap());
        assert!(check_plaintext_allowed(Tls::PlaintextLoopbackOnly, "10.0.0.1:1").is_err());
        assert!(check_plaintext_allowed(Tls::PlaintextInsecure, "10.0.0.1:1").unwrap());
        assert!(!check_plaintext_allowed(Tls::Enabled, "127.0.0.1:1").unwrap());
    }
}
