//! Volumes as the kubelet materialises them: projected ServiceAccount tokens
//! (TokenRequest), ConfigMaps, Secrets, emptyDirs and the ServiceAccount
//! volume.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, KeyToPath, Secret, ServiceAccount, ServiceAccountTokenProjection, Volume,
};
use kube::api::{Api, PostParams};

use super::{KubeletError, PodRef, io};

/// The audience of the ServiceAccount volume's token (the API server).
const API_AUDIENCE: &str = "https://kubernetes.default.svc";
/// Default expiry of projected tokens (the API's default).
const DEFAULT_EXPIRATION: i64 = 3600;

/// Writes `bytes` to `path` with `mode`.
pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KubeletError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(io(format!("write {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
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

/// Mints a token for the Pod's ServiceAccount, bound to the Pod.
async fn mint(
    client: &kube::Client,
    pod: &PodRef,
    audience: Option<&str>,
    expiration: i64,
) -> Result<String, String> {
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
    api.create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for ServiceAccount {sa}: {e}"))?
        .status
        .map(|s| s.token)
        .ok_or_else(|| format!("TokenRequest for ServiceAccount {sa} returned no token"))
}

/// The ServiceAccount volume: `token` (API audience), `ca.crt`, `namespace`.
pub(super) async fn service_account_volume(
    client: &kube::Client,
    pod: &PodRef,
    ca_pem: &str,
    dir: &Path,
) -> Result<PathBuf, KubeletError> {
    let root = dir.join("volumes").join("kube-api-access");
    make_dir(&root)?;
    let token = mint(client, pod, Some(API_AUDIENCE), DEFAULT_EXPIRATION)
        .await
        .map_err(|message| KubeletError::Volume {
            volume: "kube-api-access".into(),
            message,
        })?;
    write_file(&root.join("token"), token.as_bytes(), 0o644)?;
    write_file(&root.join("ca.crt"), ca_pem.as_bytes(), 0o644)?;
    write_file(&root.join("namespace"), pod.namespace.as_bytes(), 0o644)?;
    Ok(root)
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

async fn projected_token(
    client: &kube::Client,
    pod: &PodRef,
    projection: &ServiceAccountTokenProjection,
) -> Result<(String, Vec<u8>), String> {
    let token = mint(
        client,
        pod,
        projection.audience.as_deref(),
        projection.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION),
    )
    .await?;
    Ok((projection.path.clone(), token.into_bytes()))
}

/// The files of one volume (path inside the volume → content).
async fn volume_files(
    client: &kube::Client,
    pod: &PodRef,
    volume: &Volume,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let ns = &pod.namespace;
    if volume.empty_dir.is_some() {
        return Ok(Vec::new());
    }
    if let Some(cm) = &volume.config_map {
        return keyed_files(
            config_map_data(client, ns, &cm.name).await?,
            cm.items.as_ref(),
        );
    }
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        return keyed_files(secret_data(client, ns, &name).await?, secret.items.as_ref());
    }
    if let Some(projected) = &volume.projected {
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(token) = &source.service_account_token {
                files.push(projected_token(client, pod, token).await?);
            } else if let Some(cm) = &source.config_map {
                files.extend(keyed_files(
                    config_map_data(client, ns, &cm.name).await?,
                    cm.items.as_ref(),
                )?);
            } else if let Some(secret) = &source.secret {
                files.extend(keyed_files(
                    secret_data(client, ns, &secret.name).await?,
                    secret.items.as_ref(),
                )?);
            } else {
                return Err("projected source not supported by the testkit kubelet".into());
            }
        }
        return Ok(files);
    }
    Err("volume type not supported by the testkit kubelet (emptyDir, configMap, secret, projected are)".into())
}

/// Materialises the container's volume mounts under `dir`; returns
/// `(host path, mount path)` pairs (a `subPath` mount binds one file).
pub(super) async fn materialise(
    client: &kube::Client,
    pod: &PodRef,
    container: &Container,
    dir: &Path,
) -> Result<Vec<(PathBuf, PathBuf)>, KubeletError> {
    let mut mounts = Vec::new();
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
            for (path, bytes) in files {
                write_file(&root.join(path), &bytes, 0o644)?;
            }
        }
        let source = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => root.join(sub),
            None => root,
        };
        mounts.push((source, PathBuf::from(&mount.mount_path)));
    }
    Ok(mounts)
}
