//! Process set-up shared by the long-running subcommands (`controller`,
//! `runner`, `webhook`): the async runtime, logging and the TLS provider.

use anyhow::Context;

/// How a service logs (filtered by `RUST_LOG`, default `info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One JSON object per line (the controller: log pipelines parse it).
    Json,
    /// Human-readable lines on stdout (runner output ends up in `kubectl logs`).
    Text,
}

/// Starts logging and the multi-threaded runtime, and installs the single
/// rustls crypto provider (aws-lc-rs) used by kube, tonic and the AWS SDK.
pub(crate) fn start(format: LogFormat) -> anyhow::Result<tokio::runtime::Runtime> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // Already initialized (a second command in one process) is fine.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
