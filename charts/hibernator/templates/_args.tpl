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
- --grpc-addr={{ $s.grpc.host }}:{{ $s.grpc.port }}
- --grpc-endpoint={{ include "hibernator.grpcEndpoint" . }}
{{- if $s.grpc.tls.enabled }}
- --grpc-tls-cert={{ $s.grpc.tls.certPath }}
- --grpc-tls-key={{ $s.grpc.tls.keyPath }}
{{- end }}
{{- end }}
{{- if $s.webhook.enabled }}
- --stream-webhook-addr=0.0.0.0:{{ $s.webhook.port }}
- --webhook-endpoint={{ include "hibernator.webhookEndpoint" . }}
- --stream-webhook-max-retries={{ $s.webhook.maxRetries }}
- --stream-webhook-timeout={{ $s.webhook.timeout }}
{{- end }}
{{- if $s.persistence.enabled }}
- --log-persistence={{ $s.persistence.backend }}
{{- if eq $s.persistence.backend "s3" }}
- --log-persistence-bucket={{ required "controller.streaming.persistence.s3.bucket is required with backend s3" $s.persistence.s3.bucket }}
- --log-persistence-prefix={{ $s.persistence.s3.prefix }}
- --log-persistence-retention-days={{ $s.persistence.s3.retention }}
{{- if $s.persistence.s3.region }}
- --log-persistence-region={{ $s.persistence.s3.region }}
{{- end }}
{{- else if eq $s.persistence.backend "filesystem" }}
- --log-persistence-path={{ $s.persistence.filesystem.path }}
- --log-persistence-retention-days={{ $s.persistence.filesystem.retention }}
{{- else }}
{{- fail (printf "controller.streaming.persistence.backend must be s3 or filesystem, not %q" $s.persistence.backend) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.controller.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}
