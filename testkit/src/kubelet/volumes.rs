//! Volumes as the kubelet materialises them: projected ServiceAccount tokens
//! (TokenRequest), ConfigMaps, Secrets, emptyDirs and the ServiceAccount
//! volume.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, Secret, ServiceAccount, ServiceAccountTokenProjection, Volume,
};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::{KubeletError, PodRef, io};

/// The audience of the ServiceAccount volume's token (the API server).
const API_AUDIENCE: &str = "https://kubernetes.default.svc";
/// Default expiry of projected tokens (the API's default).
const DEFAULT_EXPIRATION: i64 = 3600;

/// Part of a token's lifetime after which the kubelet replaces it (it
/// refreshes a projected token once it is older than 80% of its TTL).
const REFRESH_FRACTION: f64 = 0.8;
/// Wait before minting again after a failed refresh.
const REFRESH_RETRY: Duration = Duration::from_secs(10);
/// Shortest wait between two mints of one token.
const REFRESH_MIN: Duration = Duration::from_secs(1);

/// Writes `bytes` to `path` with `mode`.
pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KubeletError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(io(format!("write {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
}

/// Replaces `path` with `bytes` at once (a sibling file renamed over it), so
/// a process reading it through a directory bind mount sees the old or the
/// new content, never a partly written one.
/// The volume's directory must exist: after the Pod is gone, nothing is
/// written again.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), KubeletError> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    std::fs::write(&staged, bytes).map_err(io(format!("write {}", staged.display())))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644))
        .map_err(io(format!("chmod {}", staged.display())))?;
    std::fs::rename(&staged, path).map_err(io(format!("replace {}", path.display())))
}

/// A token file the kubelet keeps fresh: where it is on the host and what
/// it was minted for.
#[derive(Clone, Debug)]
pub(super) struct TokenFile {
    /// The file on the host (inside a volume directory).
    pub path: PathBuf,
    /// The token's audience (`None`: the API server's).
    pub audience: Option<String>,
    /// Lifetime asked for, in seconds.
    pub expiration: i64,
    /// Lifetime the API server granted (it may cap what was asked).
    pub granted: i64,
}

/// How long after minting a token of `granted` seconds it is replaced:
/// `refresh` when set, else 80% of its lifetime; never sooner than
/// [`REFRESH_MIN`].
fn refresh_after(granted: i64, refresh: Option<Duration>) -> Duration {
    refresh
        .unwrap_or_else(|| Duration::from_secs_f64(granted.max(0) as f64 * REFRESH_FRACTION))
        .max(REFRESH_MIN)
}

/// Keeps the Pod's token files fresh, as the kubelet does: each is minted
/// again (same audience, lifetime and Pod binding) once it is
/// `refresh` old (default: 80% of the lifetime the API server granted) and
/// replaced atomically. A failed mint is retried after [`REFRESH_RETRY`].
/// Runs until dropped.
pub(super) async fn keep_tokens_fresh(
    client: kube::Client,
    pod: PodRef,
    tokens: Vec<TokenFile>,
    refresh: Option<Duration>,
) {
    if tokens.is_empty() {
        return;
    }
    let start = tokio::time::Instant::now();
    let mut due: Vec<tokio::time::Instant> = tokens
        .iter()
        .map(|t| start + refresh_after(t.granted, refresh))
        .collect();
    loop {
        let Some(next) = due.iter().min().copied() else {
            return;
        };
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        for (token, due) in tokens.iter().zip(due.iter_mut()) {
            if *due > now {
                continue;
            }
            let minted = mint(&client, &pod, token.audience.as_deref(), token.expiration)
                .await
                .map_err(|message| KubeletError::Volume {
                    volume: token.path.display().to_string(),
                    message,
                })
                .and_then(|(fresh, granted)| {
                    replace_file(&token.path, fresh.as_bytes()).map(|()| granted)
                });
            *due = match minted {
                Ok(granted) => tokio::time::Instant::now() + refresh_after(granted, refresh),
                Err(e) => {
                    tracing::warn!(pod = %pod.name, error = %e, "testkit kubelet: token refresh failed, retrying");
                    tokio::time::Instant::now() + REFRESH_RETRY
                }
            };
        }
    }
}

fn make_dir(path: &Path) -> Result<(), KubeletError> {
    std::fs::create_dir_all(path).map_err(io(format!("create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(io(format!("chmod {}", path.display())))
}

/// Makes sure `target` exists on the host as a mount point of the same kind
/// (directory or file) as `source`: a bind mount needs one. What it creates
/// stays empty on the host; the content is only visible in the container's
/// mount namespace.
pub(super) fn ensure_mount_point(source: &Path, target: &Path) -> Result<(), KubeletError> {
    if target.exists() {
        return Ok(());
    }
    if source.is_dir() {
        return std::fs::create_dir_all(target).map_err(io(format!("create {}", target.display())));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(target)
        .map(|_| ())
        .map_err(io(format!("create {}", target.display())))
}

/// Mints a token for the Pod's ServiceAccount, bound to the Pod; returns it
/// and the lifetime granted, in seconds.
async fn mint(
    client: &kube::Client,
    pod: &PodRef,
    audience: Option<&str>,
    expiration: i64,
) -> Result<(String, i64), String> {
    let sa = pod
        .spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
            expiration_seconds: Some(expiration),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name.clone()),
                uid: Some(pod.uid.clone()),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &pod.namespace);
    let status = api
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for ServiceAccount {sa}: {e}"))?
        .status
        .ok_or_else(|| format!("TokenRequest for ServiceAccount {sa} returned no token"))?;
    // the lifetime granted, from the expiry the API server answered
    let granted = status.expiration_timestamp.0.as_second() - Timestamp::now().as_second();
    Ok((status.token, granted))
}

/// The ServiceAccount volume: `token` (API audience), `ca.crt`, `namespace`;
/// returns its directory and its token file (to keep fresh).
pub(super) async fn service_account_volume(
    client: &kube::Client,
    pod: &PodRef,
    ca_pem: &str,
    dir: &Path,
) -> Result<(PathBuf, TokenFile), KubeletError> {
    let root = dir.join("volumes").join("kube-api-access");
    make_dir(&root)?;
    let (token, granted) = mint(client, pod, Some(API_AUDIENCE), DEFAULT_EXPIRATION)
        .await
        .map_err(|message| KubeletError::Volume {
            volume: "kube-api-access".into(),
            message,
        })?;
    write_file(&root.join("token"), token.as_bytes(), 0o644)?;
    write_file(&root.join("ca.crt"), ca_pem.as_bytes(), 0o644)?;
    write_file(&root.join("namespace"), pod.namespace.as_bytes(), 0o644)?;
    let token = TokenFile {
        path: root.join("token"),
        audience: Some(API_AUDIENCE.to_string()),
        expiration: DEFAULT_EXPIRATION,
        granted,
    };
    Ok((root, token))
}

/// Files of a ConfigMap or Secret (`items` select and rename keys).
fn keyed_files(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    match items {
        None => Ok(data.into_iter().collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                data.get(&item.key)
                    .map(|bytes| (item.path.clone(), bytes.clone()))
                    .ok_or_else(|| format!("key {:?} not found", item.key))
            })
            .collect(),
    }
}

async fn config_map_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("configmap {name}: {e}"))?;
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    data.extend(
        cm.binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0)),
    );
    Ok(data)
}

async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("secret {name}: {e}"))?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    data.extend(
        secret
            .string_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    Ok(data)
}

/// What a volume holds: its files (path inside the volume → content) and
/// which of them are tokens to keep fresh.
#[derive(Default)]
struct VolumeFiles {
    files: Vec<(String, Vec<u8>)>,
    /// Token files, their paths relative to the volume.
    tokens: Vec<TokenFile>,
}

impl From<Vec<(String, Vec<u8>)>> for VolumeFiles {
    fn from(files: Vec<(String, Vec<u8>)>) -> Self {
        VolumeFiles {
            files,
            tokens: Vec::new(),
        }
    }
}

async fn projected_token(
    client: &kube::Client,
    pod: &PodRef,
    projection: &ServiceAccountTokenProjection,
    into: &mut VolumeFiles,
) -> Result<(), String> {
    let audience = projection.audience.clone();
    let expiration = projection.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION);
    let (token, granted) = mint(client, pod, audience.as_deref(), expiration).await?;
    into.files
        .push((projection.path.clone(), token.into_bytes()));
    into.tokens.push(TokenFile {
        path: PathBuf::from(&projection.path),
        audience,
        expiration,
        granted,
    });
    Ok(())
}

/// The files of one volume.
async fn volume_files(
    client: &kube::Client,
    pod: &PodRef,
    volume: &Volume,
) -> Result<VolumeFiles, String> {
    let ns = &pod.namespace;
    if volume.empty_dir.is_some() {
        return Ok(VolumeFiles::default());
    }
    if let Some(cm) = &volume.config_map {
        return keyed_files(
            config_map_data(client, ns, &cm.name).await?,
            cm.items.as_ref(),
        )
        .map(VolumeFiles::from);
    }
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        return keyed_files(secret_data(client, ns, &name).await?, secret.items.as_ref())
            .map(VolumeFiles::from);
    }
    if let Some(projected) = &volume.projected {
        let mut out = VolumeFiles::default();
        let files = &mut out;
        for source in projected.sources.iter().flatten() {
            if let Some(token) = &source.service_account_token {
                projected_token(client, pod, token, files).await?;
            } else if let Some(cm) = &source.config_map {
                files.files.extend(keyed_files(
                    config_map_data(client, ns, &cm.name).await?,
                    cm.items.as_ref(),
                )?);
            } else if let Some(secret) = &source.secret {
                files.files.extend(keyed_files(
                    secret_data(client, ns, &secret.name).await?,
                    secret.items.as_ref(),
                )?);
            } else {
                return Err("projected source not supported by the testkit kubelet".into());
            }
        }
        return Ok(out);
    }
    Err("volume type not supported by the testkit kubelet (emptyDir, configMap, secret, projected are)".into())
}

/// The container's mounts as [`materialise`] made them.
#[derive(Debug, Default)]
pub(super) struct Materialised {
    /// `(host path, mount path)` pairs (a `subPath` mount binds one file).
    pub mounts: Vec<(PathBuf, PathBuf)>,
    /// Projected token files on the host, to keep fresh.
    pub tokens: Vec<TokenFile>,
}

/// Materialises the container's volume mounts under `dir`.
pub(super) async fn materialise(
    client: &kube::Client,
    pod: &PodRef,
    container: &Container,
    dir: &Path,
) -> Result<Materialised, KubeletError> {
    let mut out = Materialised::default();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .ok_or_else(|| KubeletError::Volume {
                volume: mount.name.clone(),
                message: "mounted but not in the pod's volumes".into(),
            })?;
        let root = dir.join("volumes").join(&volume.name);
        if !root.exists() {
            make_dir(&root)?;
            let files = volume_files(client, pod, volume).await.map_err(|message| {
                KubeletError::Volume {
                    volume: volume.name.clone(),
                    message,
                }
            })?;
            for (path, bytes) in files.files {
                write_file(&root.join(path), &bytes, 0o644)?;
            }
            out.tokens
                .extend(files.tokens.into_iter().map(|t| TokenFile {
                    path: root.join(&t.path),
                    ..t
                }));
        }
        let source = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => root.join(sub),
            None => root,
        };
        out.mounts.push((source, PathBuf::from(&mount.mount_path)));
    }
    Ok(out)
}
