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
- --leader-elect={{ .Values.controller.leaderElection.enabled }}
- --lease-name={{ include "hibernator.controllerName" . }}
- --runner-service-account={{ .Values.runner.serviceAccount.name }}
- --runner-image={{ include "hibernator.runnerImage" . }}
- --log-format={{ .Values.logFormat }}
- --runner-log-format={{ .Values.runner.logFormat | default .Values.logFormat }}
- --kube-qps={{ .Values.controller.kubeApi.qps }}
- --kube-burst={{ int .Values.controller.kubeApi.burst }}
- --kube-event-qps={{ .Values.controller.kubeApi.eventQps }}
- --kube-event-burst={{ int .Values.controller.kubeApi.eventBurst }}
- --max-concurrent-reconciles={{ int .Values.controller.maxConcurrentReconciles }}
{{- with .Values.controller.shard.planSelector }}
- {{ printf "--plan-selector=%s" . | quote }}
{{- end }}
{{- with .Values.controller.shard.namespaceSelector }}
- {{ printf "--namespace-selector=%s" . | quote }}
{{- end }}
{{- if $s.enabled }}
- --stream-transport={{ $s.transport }}
{{- if and $s.grpc.enabled (ne $s.transport "webhook") }}
- --grpc-endpoint={{ include "hibernator.grpcEndpoint" . }}
{{- end }}
{{- if and $s.webhook.enabled (ne $s.transport "grpc") }}
- --webhook-endpoint={{ include "hibernator.webhookEndpoint" . }}
{{- end }}
{{- else }}
- --stream-transport=none
{{- end }}
- --streaming-config=/etc/hibernator/config/streaming.yaml
{{- if include "hibernator.sinksEnabled" . }}
- --sinks-config=/etc/hibernator/config/sinks.yaml
{{- end }}
{{- with .Values.controller.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Arguments of `hibernator webhook`, the admission container next to the
controller (checked with --dry-run like the controller's).
*/}}
{{- define "hibernator.webhookArgs" -}}
- webhook
- --cert-file=/tmp/k8s-webhook-server/serving-certs/tls.crt
- --key-file=/tmp/k8s-webhook-server/serving-certs/tls.key
- --port={{ .Values.webhook.port }}
- --log-format={{ .Values.logFormat }}
{{- end }}

{{/*
Environment of `hibernator controller`: forwarder credentials, referenced
from sinks.yaml as `$NAME`. (HIBERNATOR_GRPC_ENDPOINT and friends still
override streaming.yaml when set with `controller.extraEnv`.)
*/}}
{{- define "hibernator.controllerEnv" -}}
{{- if .Values.controller.streaming.enabled }}
{{- if and .Values.datadog.enabled .Values.datadog.apiKeySecret.name }}
- name: DATADOG_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.datadog.apiKeySecret.name }}
      key: {{ .Values.datadog.apiKeySecret.key }}
{{- else if and .Values.datadog.enabled .Values.datadog.apiKey }}
- name: DATADOG_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "hibernator.sinksSecretName" . }}
      key: datadog-api-key
{{- end }}
{{- if and .Values.splunk.enabled .Values.splunk.tokenSecret.name }}
- name: SPLUNK_HEC_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.splunk.tokenSecret.name }}
      key: {{ .Values.splunk.tokenSecret.key }}
{{- else if and .Values.splunk.enabled .Values.splunk.token }}
- name: SPLUNK_HEC_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "hibernator.sinksSecretName" . }}
      key: splunk-hec-token
{{- end }}
{{- end }}
{{- end }}

{{/*
streaming.yaml: the streaming server and what runner Jobs are told, in the
shape of hibernator-streaming's ServerConfig (= the `controller.streaming`
values, with the runner endpoints filled in).
*/}}
{{- define "hibernator.streamingConfig" -}}
{{- $s := .Values.controller.streaming }}
{{- $grpc := dict "enabled" $s.grpc.enabled "host" $s.grpc.host "port" (int $s.grpc.port) "localAccess" $s.grpc.localAccess "endpoint" (include "hibernator.grpcEndpoint" .) "tls" (dict "enabled" $s.grpc.tls.enabled "certPath" $s.grpc.tls.certPath "keyPath" $s.grpc.tls.keyPath "caPath" (include "hibernator.grpcCaPath" .)) }}
{{- $webhook := dict "enabled" $s.webhook.enabled "host" $s.webhook.host "port" (int $s.webhook.port) "maxBodyBytes" (int $s.webhook.maxBodyBytes) "endpoint" (include "hibernator.webhookEndpoint" .) "maxRetries" (int $s.webhook.maxRetries) "timeout" (toString $s.webhook.timeout) }}
{{- toYaml (dict "enabled" $s.enabled "transport" $s.transport "grpc" $grpc "webhook" $webhook) }}
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
