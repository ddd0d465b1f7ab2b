{{/*
Command-line arguments of `hibernator controller`. scripts/chart-check.py runs
the real binary with exactly these arguments plus `--dry-run`, so every flag
here is one the binary accepts.
*/}}
{{- define "hibernator.controllerArgs" -}}
{{- $s := .Values.controller.streaming }}
- controller
- --metrics-addr=0.0.0.0:{{ .Values.prometheus.port }}
- --health-addr=0.0.0.0:{{ .Values.controller.healthPort }}
- --leader-election={{ .Values.controller.leaderElection.enabled }}
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-lease={{ include "hibernator.controllerName" . }}
- --runner-service-account={{ .Values.runner.serviceAccount.name }}
- --runner-image={{ include "hibernator.runnerImage" . }}
- --log-format={{ .Values.controller.logFormat }}
{{- if .Values.webhook.enabled }}
- --webhook-addr=0.0.0.0:{{ .Values.webhook.port }}
- --cert-file=/tmp/k8s-webhook-server/serving-certs/tls.crt
- --key-file=/tmp/k8s-webhook-server/serving-certs/tls.key
{{- end }}
{{- if $s.enabled }}
- --stream-transport={{ $s.transport }}
{{- if $s.grpc.enabled }}
- --grpc-endpoint={{ include "hibernator.grpcEndpoint" . }}
{{- end }}
{{- if $s.webhook.enabled }}
- --webhook-endpoint={{ include "hibernator.webhookEndpoint" . }}
{{- end }}
{{- if include "hibernator.sinksEnabled" . }}
- --sinks-config=/etc/hibernator/config/sinks.yaml
{{- end }}
{{- end }}
{{- with .Values.controller.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Environment of `hibernator controller`: the streaming server's listeners
(read by hibernator-streaming's ServerConfig::with_env) and forwarder
credentials referenced from sinks.yaml as `$NAME`.
*/}}
{{- define "hibernator.controllerEnv" -}}
{{- $s := .Values.controller.streaming }}
{{- if $s.enabled }}
{{- if $s.grpc.enabled }}
- name: HIBERNATOR_GRPC_ENDPOINT
  value: {{ printf "%s:%d" $s.grpc.host (int $s.grpc.port) | quote }}
- name: HIBERNATOR_GRPC_TLS
  value: {{ $s.grpc.tls.enabled | quote }}
{{- if $s.grpc.tls.enabled }}
- name: HIBERNATOR_GRPC_TLS_CERT
  value: {{ $s.grpc.tls.certPath | quote }}
- name: HIBERNATOR_GRPC_TLS_KEY
  value: {{ $s.grpc.tls.keyPath | quote }}
{{- end }}
{{- end }}
{{- if $s.webhook.enabled }}
- name: HIBERNATOR_WEBHOOK_PORT
  value: {{ $s.webhook.port | quote }}
{{- end }}
{{- if and .Values.datadog.enabled .Values.datadog.apiKeySecret.name }}
- name: DATADOG_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.datadog.apiKeySecret.name }}
      key: {{ .Values.datadog.apiKeySecret.key }}
{{- end }}
{{- if and .Values.splunk.enabled .Values.splunk.tokenSecret.name }}
- name: SPLUNK_HEC_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.splunk.tokenSecret.name }}
      key: {{ .Values.splunk.tokenSecret.key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Non-empty when the controller has a sinks.yaml (persistence or a forwarder).
*/}}
{{- define "hibernator.sinksEnabled" -}}
{{- if and .Values.controller.streaming.enabled (or .Values.controller.streaming.persistence.enabled .Values.datadog.enabled .Values.splunk.enabled .Values.otlp.enabled) }}true{{ end }}
{{- end }}

{{/*
sinks.yaml: persistence of execution logs and log forwarders, in the shape of
hibernator-streaming's SinksConfig. Credentials are `$ENV` references, filled
from Secrets by hibernator.controllerEnv, never literal values.
*/}}
{{- define "hibernator.sinksConfig" -}}
{{- $p := .Values.controller.streaming.persistence }}
{{- $out := dict }}
{{- if $p.enabled }}
{{- $persistence := dict "enabled" true "backend" $p.backend }}
{{- if eq $p.backend "s3" }}
{{- $s3 := dict "bucket" (required "controller.streaming.persistence.s3.bucket is required with backend s3" $p.s3.bucket) "prefix" $p.s3.prefix "retention" (int $p.s3.retention) }}
{{- if $p.s3.region }}{{ $_ := set $s3 "region" $p.s3.region }}{{ end }}
{{- $_ := set $persistence "s3" $s3 }}
{{- else if eq $p.backend "filesystem" }}
{{- $_ := set $persistence "filesystem" (dict "path" $p.filesystem.path "retention" (int $p.filesystem.retention)) }}
{{- else }}
{{- fail (printf "controller.streaming.persistence.backend must be s3 or filesystem, not %q" $p.backend) }}
{{- end }}
{{- $_ := set $out "persistence" $persistence }}
{{- end }}
{{- with .Values.datadog }}
{{- if .enabled }}
{{- $dd := dict "enabled" true "apiKey" "$DATADOG_API_KEY" "site" .site "service" .service "tags" .tags }}
{{- if .endpoint }}{{ $_ := set $dd "endpoint" .endpoint }}{{ end }}
{{- $_ := set $out "datadog" $dd }}
{{- end }}
{{- end }}
{{- with .Values.splunk }}
{{- if .enabled }}
{{- $sp := dict "enabled" true "endpoint" (required "splunk.endpoint is required when splunk.enabled" .endpoint) "token" "$SPLUNK_HEC_TOKEN" "source" .source }}
{{- if .index }}{{ $_ := set $sp "index" .index }}{{ end }}
{{- $_ := set $out "splunk" $sp }}
{{- end }}
{{- end }}
{{- with .Values.otlp }}
{{- if .enabled }}
{{- $_ := set $out "otlp" (dict "enabled" true "endpoint" (required "otlp.endpoint is required when otlp.enabled" .endpoint) "serviceName" .serviceName) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
