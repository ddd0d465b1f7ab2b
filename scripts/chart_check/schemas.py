"""Schemas: our CRDs as JSON Schema, the third-party kinds the chart renders,
and validation of one object against the right schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate

from .common import CHART, KUBE_VERSION, OUR_GROUP, Report, load_yaml_docs

# Schemas of the third-party kinds, limited to the fields the chart sets and
# strict about unknown fields there, so a typo in a template fails here. The
# upstream CRDs are not available offline.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "additionalProperties": False,
}
_ISSUER_REF = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["Issuer", "ClusterIssuer"]},
        "group": {"type": "string"},
    },
    "additionalProperties": False,
}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h))+$"}
_RULE = {
    "type": "object",
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        "record": {"type": "string"},
        "expr": {"type": "string", "minLength": 1},
        "for": _DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "additionalProperties": False,
}


def _object(kind: str, api_version: str, spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
        "additionalProperties": False,
    }


THIRD_PARTY: dict[tuple[str, str], dict] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _object(
        "ServiceMonitor",
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": _LABELS},
                    "additionalProperties": False,
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": False,
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _object(
        "PrometheusRule",
        "monitoring.coreos.com/v1",
        {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": _DURATION,
                            "rules": {"type": "array", "items": _RULE},
                        },
                        "additionalProperties": False,
                    },
                }
            },
            "additionalProperties": False,
        },
    ),
    ("cert-manager.io/v1", "Issuer"): _object(
        "Issuer",
        "cert-manager.io/v1",
        {
            "type": "object",
            "properties": {"selfSigned": {"type": "object", "additionalProperties": False}},
            "required": ["selfSigned"],
            "additionalProperties": False,
        },
    ),
    ("cert-manager.io/v1", "Certificate"): _object(
        "Certificate",
        "cert-manager.io/v1",
        {
            "type": "object",
            "required": ["secretName", "issuerRef", "dnsNames"],
            "properties": {
                "secretName": {"type": "string"},
                "dnsNames": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "ipAddresses": {"type": "array", "items": {"type": "string"}},
                "issuerRef": _ISSUER_REF,
            },
            "additionalProperties": False,
        },
    ),
}


def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> JSON schema from our CRDs' openAPIV3Schema."""
    schemas = {}
    for file in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_yaml_docs(file.read_text()):
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = to_json_schema(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})
                schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
                schema["properties"]["kind"] = {"const": kind}
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def to_json_schema(node: Any) -> Any:
    """Structural OpenAPI v3 (Kubernetes flavour) -> JSON Schema.

    `nullable: true` admits null; object nodes without
    `x-kubernetes-preserve-unknown-fields` reject unknown fields, as the API
    server prunes them (a typo in an example would silently vanish).
    """
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    out.pop("nullable", None)
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("format") in ("uint8", "uint32", "int32", "int64"):
        out.pop("format")
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


def validate_object(obj: dict, ours: dict, origin: str, report: Report, verbose: bool) -> None:
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    name = f"{origin}: {key[1]}/{obj.get('metadata', {}).get('name', '?')}"
    schema = ours.get(key) or THIRD_PARTY.get(key)
    if schema is None and key[0].split("/")[0] == OUR_GROUP:
        report.fail(name, f"no CRD for {key[0]} {key[1]}")
        return
    try:
        if schema is not None:
            jsonschema.validate(obj, schema, cls=jsonschema.Draft202012Validator)
        else:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except jsonschema.ValidationError as err:
        path = ".".join(str(p) for p in err.absolute_path)
        report.fail(name, f"{path}: {err.message}")
        return
    except kubernetes_validate.SchemaNotFoundError as err:
        report.fail(name, err.message)
        return
    report.ok(name, verbose)
