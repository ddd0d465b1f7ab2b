//! Process set-up shared by the long-running subcommands (`controller`,
//! `runner`, `webhook`): the async runtime, logging and the TLS provider.

use anyhow::Context;

pub(crate) use crate::logging::LogFormat;

/// Starts logging in `format` ([`crate::logging::start`]) and the
/// multi-threaded runtime, and installs the single rustls crypto provider
/// (aws-lc-rs) used by kube, tonic and the AWS SDK.
pub(crate) fn start(format: LogFormat) -> anyhow::Result<tokio::runtime::Runtime> {
    crate::logging::start(format);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
