//! Minimal CRDs of the third-party APIs our executors use. Their schemas keep
//! unknown fields (`x-kubernetes-preserve-unknown-fields`), so tests can store
//! any shape the real controllers use; they are valid on a real cluster too.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceSubresourceStatus, CustomResourceSubresources,
    CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

struct Def<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    plural: &'a str,
    namespaced: bool,
    short_names: &'a [&'a str],
}

fn build(d: &Def<'_>) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", d.plural, d.group)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: d.group.to_string(),
            names: CustomResourceDefinitionNames {
                kind: d.kind.to_string(),
                list_kind: Some(format!("{}List", d.kind)),
                plural: d.plural.to_string(),
                singular: Some(d.kind.to_ascii_lowercase()),
                short_names: (!d.short_names.is_empty())
                    .then(|| d.short_names.iter().map(|s| (*s).to_string()).collect()),
                categories: None,
            },
            scope: if d.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
            .to_string(),
            versions: vec![CustomResourceDefinitionVersion {
                name: d.version.to_string(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(JSONSchemaProps {
                        type_: Some("object".into()),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        ..JSONSchemaProps::default()
                    }),
                }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            conversion: None,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}

/// `karpenter.sh/v1` NodePool (cluster-scoped, status subresource).
pub fn karpenter_nodepool() -> CustomResourceDefinition {
    build(&Def {
        group: "karpenter.sh",
        version: "v1",
        kind: "NodePool",
        plural: "nodepools",
        namespaced: false,
        short_names: &[],
    })
}

/// `karpenter.sh/v1` NodeClaim (cluster-scoped, status subresource).
pub fn karpenter_nodeclaim() -> CustomResourceDefinition {
    build(&Def {
        group: "karpenter.sh",
        version: "v1",
        kind: "NodeClaim",
        plural: "nodeclaims",
        namespaced: false,
        short_names: &[],
    })
}

/// `keda.sh/v1alpha1` ScaledObject (namespaced, status subresource).
pub fn keda_scaledobject() -> CustomResourceDefinition {
    build(&Def {
        group: "keda.sh",
        version: "v1alpha1",
        kind: "ScaledObject",
        plural: "scaledobjects",
        namespaced: true,
        short_names: &["so"],
    })
}
