//! The HTTP side: routing Kubernetes REST paths to the verbs, fault hooks,
//! discovery documents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::auth::TokenAuthority;
use super::controllers;
use super::error::{ApiError, json_response};
use super::faults::Faults;
use super::list::ListQuery;
use super::objects::{Part, State};
use super::patch::{self, PatchKind};
use super::registry::ResourceDef;
use super::selectors::{FieldSelector, LabelSelector};
use super::watch::{self, WatchRequest};

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub faults: Mutex<Faults>,
    pub auth: TokenAuthority,
    bookmark_interval: Mutex<Duration>,
    /// Bumped to end every open watch.
    watch_epoch: tokio::sync::watch::Sender<u64>,
    pub address: Mutex<String>,
    /// Wakes the controller task (garbage collector, namespace publishers).
    pub controllers_wake: Arc<Notify>,
    controllers_started: Once,
}

/// Locks a mutex, recovering from poisoning (a panicking test thread must
/// not wedge the server for the others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new() -> Self {
        let (watch_epoch, _) = tokio::sync::watch::channel(0);
        Self {
            state: Mutex::new(State::new()),
            faults: Mutex::new(Faults::default()),
            auth: TokenAuthority::new(),
            bookmark_interval: Mutex::new(Duration::from_secs(5)),
            watch_epoch,
            address: Mutex::new(String::new()),
            controllers_wake: Arc::new(Notify::new()),
            controllers_started: Once::new(),
        }
    }

    /// Starts the controller task once (the router calls this).
    pub fn start_controllers(self: &Arc<Self>) {
        self.controllers_started
            .call_once(|| controllers::spawn(self));
    }

    /// Lets the controllers look at the store now (after a write).
    pub fn wake_controllers(&self) {
        self.controllers_wake.notify_one();
    }

    /// Sets the CA bundle every namespace's `kube-root-ca.crt` ConfigMap
    /// carries (a TLS listener calls this with its CA).
    pub fn set_root_ca_pem(&self, pem: &str) {
        lock(&self.state).set_root_ca_pem(pem);
    }

    pub fn bookmark_interval(&self) -> Duration {
        *lock(&self.bookmark_interval)
    }

    pub fn set_bookmark_interval(&self, interval: Duration) {
        *lock(&self.bookmark_interval) = interval.max(Duration::from_millis(1));
    }

    /// A receiver that changes when open watches must end.
    pub fn watch_closer(&self) -> tokio::sync::watch::Receiver<u64> {
        self.watch_epoch.subscribe()
    }

    /// Ends every open watch (clients reconnect).
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }
}

/// The router: every path goes through [`handle`]. Starts the server's
/// controllers (garbage collection, namespace publishers) on first use.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    shared.start_controllers();
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    if let Err(e) = authenticate(&shared, &req) {
        return e.into_response();
    }
    match dispatch(&shared, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Checks a ServiceAccount token presented as `Authorization: Bearer`, as a
/// real API server does: a token this server issued must be well signed,
/// unexpired and meant for the API server (audience), or the request gets
/// `401 Unauthorized`. Requests without a token, and tokens of other issuers
/// (kubeconfig fixtures), are let through: the testkit has no RBAC.
fn authenticate(shared: &Shared, req: &Request) -> Result<(), ApiError> {
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.starts_with("testkit."))
    else {
        return Ok(());
    };
    let unauthorized =
        |why: &str| ApiError::new(401, "Unauthorized", format!("Unauthorized: {why}"));
    let claims = shared.auth.verify(token.trim()).map_err(unauthorized)?;
    if claims.expires_at <= chrono::Utc::now().timestamp() {
        return Err(unauthorized("token has expired"));
    }
    if !claims
        .audiences
        .iter()
        .any(|a| a == super::auth::DEFAULT_AUDIENCE)
    {
        return Err(unauthorized(
            "token audiences do not include the API server",
        ));
    }
    Ok(())
}

/// A request for a resource.
#[derive(Debug)]
struct Target {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Resource(Target),
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({path})"),
    )
}

fn parse_route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["apis", g] => return Ok(Route::Group((*g).to_string())),
        ["api", v] => return Ok(Route::Resources(String::new(), (*v).to_string())),
        ["apis", g, v] => return Ok(Route::Resources((*g).to_string(), (*v).to_string())),
        ["api", v, rest @ ..] => (String::new(), (*v).to_string(), rest),
        ["apis", g, v, rest @ ..] => ((*g).to_string(), (*v).to_string(), rest),
        _ => return Err(not_found_path(path)),
    };
    let namespace_sub = rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, r) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !namespace_sub
    {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let own = |i: usize| r.get(i).map(|s| (*s).to_string());
    if r.is_empty() || r.len() > 3 {
        return Err(not_found_path(path));
    }
    Ok(Route::Resource(Target {
        group,
        version,
        plural: r[0].to_string(),
        namespace,
        name: own(1),
        sub: own(2),
    }))
}

fn verb_of(method: &Method, t: &Target, watch: bool) -> Result<&'static str, ApiError> {
    Ok(match (method.as_str(), t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "{m} is not supported on this path"
            )));
        }
    })
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn list_query(def: &ResourceDef, q: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let query = ListQuery {
        label_selector: q
            .get("labelSelector")
            .map(|s| LabelSelector::parse(s))
            .transpose()?,
        field_selector: q
            .get("fieldSelector")
            .map(|s| FieldSelector::parse(s))
            .transpose()?,
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        continue_token: q.get("continue").cloned(),
    };
    query.for_resource(def)
}

fn ok(code: StatusCode, body: &Value) -> Result<Response, ApiError> {
    Ok(json_response(code, body))
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

async fn dispatch(shared: &Arc<Shared>, req: Request) -> Result<Response, ApiError> {
    let latency = lock(&shared.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let route = parse_route(&path)?;
    let t = match route {
        Route::Version => {
            return ok(
                StatusCode::OK,
                &json!({
                    "major": "1", "minor": "35", "gitVersion": "v1.35.0-hibernator-testkit",
                    "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "", "compiler": "rustc", "platform": "linux/amd64",
                }),
            );
        }
        Route::CoreVersions => {
            let address = lock(&shared.address).clone();
            return ok(
                StatusCode::OK,
                &lock(&shared.state).registry.core_versions(&address),
            );
        }
        Route::Groups => return ok(StatusCode::OK, &lock(&shared.state).registry.group_list()),
        Route::Group(g) => {
            let doc = lock(&shared.state)
                .registry
                .group(&g)
                .ok_or_else(|| not_found_path(&path))?;
            return ok(StatusCode::OK, &doc);
        }
        Route::Resources(g, v) => {
            let doc = lock(&shared.state)
                .registry
                .resource_list(&g, &v)
                .ok_or_else(|| not_found_path(&path))?;
            return ok(StatusCode::OK, &doc);
        }
        Route::Resource(t) => t,
    };
    let q: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    let verb = verb_of(&parts.method, &t, is_true(&q, "watch"))?;
    let resource = match &t.sub {
        Some(sub) => format!("{}/{}", t.plural, sub),
        None => t.plural.clone(),
    };
    if let Some(code) = lock(&shared.faults).on_request(verb, &resource) {
        return Err(ApiError::injected(code, verb, &resource));
    }
    let def = lock(&shared.state)
        .registry
        .find(&t.group, &t.version, &t.plural)
        .cloned()
        .ok_or_else(|| not_found_path(&path))?;
    if !def.namespaced && t.namespace.is_some() {
        return Err(not_found_path(&path));
    }
    if def.namespaced
        && t.namespace.is_none()
        && !matches!(verb, "list" | "watch" | "deletecollection")
    {
        return Err(not_found_path(&path));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
    let header_str = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let media = Media {
        content_type: header_str(header::CONTENT_TYPE),
        metadata_only: header_str(header::ACCEPT).contains("as=PartialObjectMetadata"),
    };
    let response = serve(shared, &def, &t, verb, &q, &media, &bytes);
    if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        shared.wake_controllers();
    }
    response
}

/// What the request body is and what the client accepts.
struct Media {
    content_type: String,
    /// `Accept: ...;as=PartialObjectMetadata`: answer with metadata only.
    metadata_only: bool,
}

/// The `PartialObjectMetadata` view of an object.
pub(crate) fn partial(obj: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn partial_list(mut list: Value) -> Value {
    let items: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(partial).collect())
        .unwrap_or_default();
    list["apiVersion"] = json!("meta.k8s.io/v1");
    list["kind"] = json!("PartialObjectMetadataList");
    list["items"] = json!(items);
    list
}

fn serve(
    shared: &Arc<Shared>,
    def: &ResourceDef,
    t: &Target,
    verb: &str,
    q: &HashMap<String, String>,
    media: &Media,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let v = t.version.as_str();
    let sub = t.sub.as_deref();
    let out = |obj: Value| State::output(def, v, obj);
    let view = |obj: Value| {
        if media.metadata_only {
            partial(&obj)
        } else {
            out(obj)
        }
    };
    if def.create_only && verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "{} only supports create",
            def.qualified()
        )));
    }
    let part = match sub {
        None | Some("scale") | Some("log") | Some("token") => Part::Main,
        Some("status") if def.status => Part::Status,
        Some(other) => {
            return Err(ApiError::not_found(
                &def.group,
                &format!("{}/{other}", def.plural),
                &name,
            ));
        }
    };
    let scale = sub == Some("scale");
    if scale && def.scale.is_none()
        || sub.is_some_and(|s| matches!(s, "log" | "token") && !def.extra_subresources.contains(&s))
    {
        return Err(ApiError::not_found(
            &def.group,
            &format!("{}/{}", def.plural, sub.unwrap_or_default()),
            &name,
        ));
    }
    match verb {
        "watch" => {
            let req = WatchRequest {
                def: def.clone(),
                version: t.version.clone(),
                namespace: t.namespace.clone(),
                query: list_query(def, q)?,
                resource_version: q
                    .get("resourceVersion")
                    .and_then(|r| r.parse::<u64>().ok())
                    .filter(|r| *r > 0),
                bookmarks: is_true(q, "allowWatchBookmarks"),
                send_initial_events: is_true(q, "sendInitialEvents"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs),
                metadata_only: media.metadata_only,
            };
            let stream = watch::start(shared, req);
            let mut resp = Body::from_stream(stream).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        "list" => {
            let body =
                lock(&shared.state).list(def, v, t.namespace.as_deref(), &list_query(def, q)?)?;
            if media.metadata_only {
                return ok(StatusCode::OK, &partial_list(body));
            }
            ok(StatusCode::OK, &body)
        }
        "get" if sub == Some("log") => {
            let state = lock(&shared.state);
            state.get(def, &ns, &name)?;
            let log = state
                .pod_logs
                .get(&(ns.clone(), name.clone()))
                .cloned()
                .unwrap_or_default();
            let log = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => {
                    let lines: Vec<&str> = log.lines().collect();
                    let start = lines.len().saturating_sub(n);
                    lines[start..].iter().map(|l| format!("{l}\n")).collect()
                }
                None => log,
            };
            let mut resp = (StatusCode::OK, log).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp)
        }
        "get" if scale => ok(
            StatusCode::OK,
            &lock(&shared.state).get_scale(def, &ns, &name)?,
        ),
        "get" => ok(
            StatusCode::OK,
            &view(lock(&shared.state).get(def, &ns, &name)?),
        ),
        "create" if sub == Some("token") => {
            let body = parse_json(bytes)?;
            ok(
                StatusCode::CREATED,
                &lock(&shared.state).token_request(&shared.auth, &ns, &name, &body)?,
            )
        }
        "create" if def.create_only => {
            let body = parse_json(bytes)?;
            ok(
                StatusCode::CREATED,
                &lock(&shared.state).token_review(&shared.auth, &body),
            )
        }
        "create" if t.name.is_none() => {
            let body = parse_json(bytes)?;
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "the request body must be a JSON object",
                ));
            }
            ok(
                StatusCode::CREATED,
                &out(lock(&shared.state).create(def, v, &ns, body)?),
            )
        }
        "update" if scale => {
            let body = parse_json(bytes)?;
            ok(
                StatusCode::OK,
                &lock(&shared.state).update_scale(def, &ns, &name, &body)?,
            )
        }
        "update" => {
            let body = parse_json(bytes)?;
            ok(
                StatusCode::OK,
                &out(lock(&shared.state).update(def, &ns, &name, part, body)?),
            )
        }
        "patch" => {
            let kind = PatchKind::from_content_type(&media.content_type)?;
            let body = patch::parse_body(kind, bytes)?;
            let mut state = lock(&shared.state);
            if scale {
                return ok(
                    StatusCode::OK,
                    &state.patch_scale(def, &ns, &name, kind, &body)?,
                );
            }
            ok(
                StatusCode::OK,
                &out(state.patch(def, &ns, &name, part, kind, &body)?),
            )
        }
        "delete" if sub.is_none() => {
            let options = parse_json(bytes)?;
            ok(
                StatusCode::OK,
                &out(lock(&shared.state).delete(def, &ns, &name, &options)?),
            )
        }
        "deletecollection" if sub.is_none() => {
            let options = parse_json(bytes)?;
            let body = lock(&shared.state).delete_collection(
                def,
                v,
                t.namespace.as_deref(),
                &list_query(def, q)?,
                &options,
            )?;
            ok(StatusCode::OK, &body)
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{verb} is not supported on {}",
            def.qualified()
        ))),
    }
}
