//! Start-up checks of the controller's streaming configuration that go
//! beyond parsing: files that must exist, and bind addresses runners cannot
//! reach. They turn settings that would fail later, or silently, into an
//! error or warning at start-up that names the fix.

use std::net::IpAddr;

use super::{
    ConfigError, ENV_GRPC_ENDPOINT, ENV_GRPC_TLS, ServerConfig, Transport, split_host_port,
};

/// What [`ServerConfig::startup_check`] found that is not fatal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StartupCheck {
    /// Problems to log at start-up (each a complete sentence naming the fix).
    pub warnings: Vec<String>,
}

/// Whether `host` names the loopback interface (`localhost`, `127.0.0.0/8`,
/// `::1`, also in brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of an endpoint (`host:port`, `http(s)://host:port`), when it parses.
fn endpoint_host(endpoint: &str) -> Option<String> {
    split_host_port(endpoint, "endpoint").ok().map(|(h, _)| h)
}

impl ServerConfig {
    /// Checks what the controller needs before it serves, with `env` the
    /// controller's environment (to name the variable that set a value):
    ///
    /// - with gRPC TLS on, the certificate and key files are readable
    ///   (otherwise an error naming the chart value that mounts them);
    /// - a gRPC listener bound to loopback (`HIBERNATOR_GRPC_ENDPOINT=localhost:50051`)
    ///   while runners are told a non-loopback endpoint is reachable only
    ///   through `kubectl port-forward`: a warning when runners can fall back
    ///   to the webhook (`transport: auto`), an error when they cannot.
    pub fn startup_check(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<StartupCheck, ConfigError> {
        let mut check = StartupCheck::default();
        if !self.enabled || !self.grpc.enabled {
            return Ok(check);
        }
        if self.grpc.tls.enabled {
            let from_env = env(ENV_GRPC_TLS).is_some();
            for (field, path) in [
                ("grpc.tls.certPath", &self.grpc.tls.cert_path),
                ("grpc.tls.keyPath", &self.grpc.tls.key_path),
            ] {
                if let Err(e) = std::fs::File::open(path) {
                    return Err(ConfigError::TlsFile {
                        field,
                        path: path.clone(),
                        message: e.to_string(),
                        from_env,
                    });
                }
            }
        }
        if !is_loopback_host(&self.grpc.host) || self.transport == Transport::Webhook {
            return Ok(check);
        }
        let Some(endpoint) = &self.grpc.endpoint else {
            return Ok(check);
        };
        if endpoint_host(endpoint).is_some_and(|h| is_loopback_host(&h)) {
            // Runners dial loopback too: a local set-up (tests, `hibernator
            // run`-like) where they share the host.
            return Ok(check);
        }
        let bind = format!("{}:{}", self.grpc.host, self.grpc.port);
        let origin = match env(ENV_GRPC_ENDPOINT) {
            Some(value) => format!("{ENV_GRPC_ENDPOINT}={value}"),
            None => format!("grpc.host {}", self.grpc.host),
        };
        let fix = format!(
            "to serve runners, bind all interfaces: {ENV_GRPC_ENDPOINT}=0.0.0.0:{port} (or \
             unset it; with the Helm chart controller.streaming.grpc.host and port set the \
             bind address and controller.streaming.grpc.endpoint what runners dial)",
            port = self.grpc.port
        );
        let can_fall_back = self.transport == Transport::Auto
            && self.webhook.enabled
            && self.webhook.endpoint.is_some();
        if can_fall_back {
            check.warnings.push(format!(
                "gRPC listens on {bind}, a loopback address ({origin}): runner Jobs dial \
                 {endpoint} from their own pods and cannot reach it, so they will fall back to \
                 the webhook ({webhook}); only kubectl port-forward reaches gRPC. {fix}",
                webhook = self.webhook.endpoint.as_deref().unwrap_or_default(),
            ));
            Ok(check)
        } else {
            Err(ConfigError::Invalid {
                field: ENV_GRPC_ENDPOINT,
                message: format!(
                    "gRPC listens on {bind}, a loopback address ({origin}): runner Jobs dial \
                     {endpoint} from their own pods and cannot reach it, and with transport {} \
                     and {} they have no webhook to fall back to; {fix}",
                    match self.transport {
                        Transport::Grpc => "grpc",
                        _ => "auto",
                    },
                    if self.webhook.enabled {
                        "no webhook endpoint"
                    } else {
                        "the webhook disabled"
                    }
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_like() -> ServerConfig {
        let mut cfg = ServerConfig::default();
        cfg.grpc.endpoint = Some("hibernator-controller.hibernator-system.svc:50051".into());
        cfg.webhook.endpoint =
            Some("http://hibernator-controller.hibernator-system.svc:8082/logs".into());
        cfg
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "hibernator-controller",
            "192.0.2.2",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_journeys_set_env_warns_that_runners_fall_back_to_the_webhook() {
        let env = |k: &str| (k == ENV_GRPC_ENDPOINT).then(|| "localhost:50051".to_string());
        let cfg = chart_like().with_env(env).unwrap();
        let check = cfg.startup_check(env).unwrap();
        assert_eq!(check.warnings.len(), 1, "{check:?}");
        let warning = &check.warnings[0];
        for part in [
            "HIBERNATOR_GRPC_ENDPOINT=localhost:50051",
            "cannot reach it",
            "fall back to the webhook",
            "HIBERNATOR_GRPC_ENDPOINT=0.0.0.0:50051",
        ] {
            assert!(warning.contains(part), "{part}: {warning}");
        }
        // Without a webhook to fall back to, it is an error.
        let mut grpc_only = cfg.clone();
        grpc_only.transport = Transport::Grpc;
        let error = grpc_only.startup_check(env).unwrap_err().to_string();
        assert!(error.contains("no webhook to fall back to"), "{error}");
        // All interfaces, or runners that dial loopback themselves: fine.
        assert_eq!(
            chart_like().startup_check(env).unwrap(),
            StartupCheck::default()
        );
        let mut local = cfg;
        local.grpc.endpoint = Some("127.0.0.1:50051".into());
        assert!(local.startup_check(env).unwrap().warnings.is_empty());
    }

    #[test]
    fn tls_without_a_mounted_certificate_names_the_chart_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = chart_like();
        cfg.grpc.tls.enabled = true;
        cfg.grpc.tls.cert_path = dir.path().join("tls.crt");
        cfg.grpc.tls.key_path = dir.path().join("tls.key");
        let env = |k: &str| (k == ENV_GRPC_TLS).then(|| "true".to_string());
        let error = cfg.startup_check(env).unwrap_err().to_string();
        for part in [
            "HIBERNATOR_GRPC_TLS=true",
            "tls.crt",
            "controller.streaming.grpc.tls.enabled=true",
        ] {
            assert!(error.contains(part), "{part}: {error}");
        }
        std::fs::write(&cfg.grpc.tls.cert_path, "x").unwrap();
        std::fs::write(&cfg.grpc.tls.key_path, "x").unwrap();
        assert!(cfg.startup_check(env).is_ok());
    }
}
