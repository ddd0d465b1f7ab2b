//! `hibernator webhook`: the validating admission webhook for HibernatePlan,
//! ScheduleException, HolidayCalendar, CloudProvider, K8SCluster and
//! HibernateNotification (templates are compiled and rendered against a sample
//! event).
//!
//! [`router_with`] serves `POST /validate` (AdmissionReview
//! `admission.k8s.io/v1`) and `GET /healthz`; [`review`] is the decision: the
//! object is decoded (type errors name their field) and checked with
//! `hibernator_core::validation` against the binary's executor set;
//! errors deny the request with every error and its field, warnings become
//! admission warnings. Objects of other groups, deletions and requests
//! without an object are allowed untouched. [`serve`] runs the router over
//! TLS with certificates reloaded when the mounted files change ([`tls`]).

pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use hibernator_core::diag::Diagnostic;
use hibernator_core::diag::Diagnostics;
use hibernator_core::params::ParameterCatalog;
use hibernator_core::types::API_GROUP;
use hibernator_core::types::{
    CloudProvider, HibernateNotification, HibernatePlan, HolidayCalendar, K8SCluster,
    ScheduleException,
};
use hibernator_core::validation::{
    validate_calendar, validate_cloud_provider, validate_cluster, validate_exception, validate_plan,
};
use hibernator_executors::ExecutorSet;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use self::tls::{ReloadingCert, TlsError};
use crate::logging::LogFormat;

/// Default serving certificate (controller-runtime's convention).
pub const DEFAULT_CERT_FILE: &str = "/tmp/k8s-webhook-server/serving-certs/tls.crt";
/// Default serving key.
pub const DEFAULT_KEY_FILE: &str = "/tmp/k8s-webhook-server/serving-certs/tls.key";

/// Arguments of `hibernator webhook`.
#[derive(Clone, Debug, clap::Args)]
pub struct WebhookArgs {
    /// Serving certificate chain (PEM); reloaded when it changes.
    #[arg(long, default_value = DEFAULT_CERT_FILE)]
    pub cert_file: PathBuf,
    /// Serving private key (PEM); reloaded when it changes.
    #[arg(long, default_value = DEFAULT_KEY_FILE)]
    pub key_file: PathBuf,
    /// Port to listen on (all interfaces).
    #[arg(long, default_value_t = 9443)]
    pub port: u16,
    /// Load and check the certificate and key, print the effective
    /// configuration as JSON, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Log format on stdout: `text` (`<time> [LEVEL] message key=value`,
    /// the default) or `json` (one object per line).
    #[arg(long, env = "HIBERNATOR_LOG_FORMAT", value_enum, default_value_t = DEFAULT_LOG_FORMAT)]
    pub log_format: LogFormat,
}

/// The webhook's log format when neither `--log-format` nor
/// `HIBERNATOR_LOG_FORMAT` is given.
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;

/// [`router_with`] validating plans against the built-in executors.
pub fn router() -> Router {
    router_with(Arc::new(ExecutorSet::new().catalog()))
}

/// The webhook routes: `POST /validate` (plans checked against `catalog`,
/// the binary's executor set), `GET /healthz`.
pub fn router_with(catalog: Arc<ParameterCatalog>) -> Router {
    Router::new()
        .route("/validate", post(validate_handler))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(catalog)
}

async fn validate_handler(
    State(catalog): State<Arc<ParameterCatalog>>,
    Json(body): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    Json(review(body, &catalog))
}

/// Decides one AdmissionReview and returns the response review.
pub fn review(
    review: AdmissionReview<DynamicObject>,
    catalog: &ParameterCatalog,
) -> AdmissionReview<DynamicObject> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(e) => {
            return AdmissionResponse::invalid(format!("not an AdmissionReview request: {e}"))
                .into_review();
        }
    };
    decide(&request, catalog).into_review()
}

/// The admission decision for `request`; plans are checked against the
/// executor types of `catalog`.
pub fn decide(
    request: &AdmissionRequest<DynamicObject>,
    catalog: &ParameterCatalog,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if request.kind.group != API_GROUP || matches!(request.operation, Operation::Delete) {
        return response;
    }
    let Some(object) = &request.object else {
        return response;
    };
    let value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => return response.deny(format!("cannot read the object: {e}")),
    };
    let kind = request.kind.kind.as_str();
    let diagnostics = match kind {
        "HibernatePlan" => typed::<HibernatePlan>(value).map(|plan| validate_plan(&plan, catalog)),
        "ScheduleException" => typed::<ScheduleException>(value).map(|e| validate_exception(&e)),
        "HolidayCalendar" => typed::<HolidayCalendar>(value).map(|c| calendar_review(&c)),
        "CloudProvider" => typed::<CloudProvider>(value).map(|p| validate_cloud_provider(&p)),
        "K8SCluster" => typed::<K8SCluster>(value).map(|c| validate_cluster(&c)),
        "HibernateNotification" => typed::<HibernateNotification>(value)
            .map(|n| hibernator_reconcile::notify::validate::check_notification(&n.spec)),
        _ => return response,
    };
    let diagnostics = diagnostics.unwrap_or_else(|d| Diagnostics {
        errors: vec![d],
        warnings: Vec::new(),
    });
    let name = match (&request.namespace, request.name.as_str()) {
        (_, "") => object.metadata.name.clone().unwrap_or_default(),
        (_, name) => name.to_string(),
    };
    let mut response = response;
    if !diagnostics.warnings.is_empty() {
        response.warnings = Some(diagnostics.warnings.iter().map(describe).collect());
    }
    if diagnostics.errors.is_empty() {
        return response;
    }
    let list: Vec<String> = diagnostics.errors.iter().map(describe).collect();
    response.deny(format!(
        "{kind} {name:?} is invalid ({} error{}): {}",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        list.join("; ")
    ))
}

/// How far ahead a calendar must know its days before admission warns.
const CALENDAR_COVERAGE_DAYS: i64 = 90;

/// A calendar's checks, plus a preview of its next days and a warning when its
/// coverage ends within [`CALENDAR_COVERAGE_DAYS`] (its iCalendar documents live
/// in ConfigMaps the webhook does not read: those sources are left out here).
fn calendar_review(calendar: &HolidayCalendar) -> Diagnostics {
    let mut d = validate_calendar(calendar);
    if !d.is_valid() {
        return d;
    }
    let mut spec = calendar.spec.clone();
    let has_ical = !spec.ical.is_empty();
    spec.ical.clear();
    if spec.dates.is_empty() && spec.public_holidays.is_empty() {
        return d;
    }
    let today = chrono::Utc::now().date_naive();
    let namespace = calendar.metadata.namespace.as_deref().unwrap_or("default");
    let name = calendar.metadata.name.as_deref().unwrap_or("<unnamed>");
    match hibernator_core::calendar::resolve_spec(
        namespace,
        name,
        &spec,
        &hibernator_core::calendar::NoDocuments,
        today,
    ) {
        Err(e) => d.error(e.field, e.message),
        Ok(days) => {
            let until = today + chrono::Duration::days(CALENDAR_COVERAGE_DAYS);
            if let Some(warning) = days.coverage_warning(today, until) {
                d.warn("spec", warning);
            }
            let next: Vec<String> = days
                .between(today, until)
                .take(5)
                .map(|(date, n)| format!("{} {date} ({n})", date.format("%a")))
                .collect();
            d.warn(
                "spec",
                format!(
                    "next days ({}{}): {}",
                    spec.effect.as_str(),
                    if has_ical {
                        ", without the ical sources"
                    } else {
                        ""
                    },
                    if next.is_empty() {
                        "none in the next 90 days".to_string()
                    } else {
                        next.join(", ")
                    }
                ),
            );
        }
    }
    d
}

fn describe(d: &Diagnostic) -> String {
    if d.field.is_empty() {
        d.message.clone()
    } else {
        format!("{}: {}", d.field, d.message)
    }
}

/// Decodes the object, naming the field of a type error.
fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Diagnostic::new(field, e.into_inner().to_string())
    })
}

/// Serves `app` over TLS on `listener` until the process ends; each
/// connection runs on its own task, handshake failures are logged.
pub async fn serve(listener: TcpListener, tls: rustls::ServerConfig, app: Router) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move { connection(acceptor, stream, peer, app).await });
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
) {
    let tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
    };
    let service = TowerToHyperService::new(app);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// `hibernator webhook`: loads the certificate, listens on `--port` and serves
/// [`router_with`] the catalog of `executors` until the process is stopped.
pub fn command(
    args: WebhookArgs,
    executors: &ExecutorSet,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let runtime = crate::cli::service::start(args.log_format)?;
    runtime.block_on(async {
        let tls = ReloadingCert::load(&args.cert_file, &args.key_file)?.into_server_config()?;
        if args.dry_run {
            let effective = serde_json::json!({
                "certFile": args.cert_file.display().to_string(),
                "keyFile": args.key_file.display().to_string(),
                "port": args.port,
                "logFormat": args.log_format.as_str(),
                "paths": ["/validate", "/healthz"],
            });
            println!("{}", serde_json::to_string_pretty(&effective)?);
            return Ok(std::process::ExitCode::SUCCESS);
        }
        let listener = TcpListener::bind(("0.0.0.0", args.port))
            .await
            .with_context(|| format!("cannot listen on port {}", args.port))?;
        tracing::info!(port = args.port, "admission webhook serving /validate");
        tokio::select! {
            () = serve(listener, tls, router_with(Arc::new(executors.catalog()))) => {}
            () = crate::controller::args::shutdown_signal() => {}
        }
        Ok(std::process::ExitCode::SUCCESS)
    })
}
