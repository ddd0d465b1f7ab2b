{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "hibernator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource-name prefix: the release name, plus the chart name unless the release
name already contains it. Release "hibernator" gives "hibernator", so the
controller is "hibernator-controller".
*/}}
{{- define "hibernator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hibernator.controllerName" -}}
{{- printf "%s-controller" (include "hibernator.fullname" .) }}
{{- end }}

{{- define "hibernator.admissionServiceName" -}}
{{- printf "%s-admission" (include "hibernator.fullname" .) }}
{{- end }}

{{- define "hibernator.webhookCertSecret" -}}
{{- printf "%s-webhook-tls" (include "hibernator.fullname" .) }}
{{- end }}

{{- define "hibernator.grpcCertSecret" -}}
{{- if .Values.controller.streaming.grpc.tls.secretName }}
{{- .Values.controller.streaming.grpc.tls.secretName }}
{{- else }}
{{- printf "%s-grpc-tls" (include "hibernator.fullname" .) }}
{{- end }}
{{- end }}

{{- define "hibernator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "hibernator.labels" -}}
helm.sh/chart: {{ include "hibernator.chart" . }}
app.kubernetes.io/name: {{ include "hibernator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hibernator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the controller pods (immutable once installed).
*/}}
{{- define "hibernator.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "hibernator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "hibernator.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "hibernator.controllerName" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespaces in which runner Jobs run (plan namespaces); the release namespace
when none are listed.
*/}}
{{- define "hibernator.runnerNamespaces" -}}
{{- $ns := .Values.runner.namespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $ns) }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to
the chart's appVersion).
*/}}
{{- define "hibernator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "hibernator.runnerImage" -}}
{{- default (include "hibernator.image" .) .Values.runner.image }}
{{- end }}

{{/*
The CA bundle runners must trust for gRPC TLS (given to each runner Job
inline): `tls.caPath`, else `ca.crt` next to `tls.certPath`.
*/}}
{{- define "hibernator.grpcCaPath" -}}
{{- $t := .Values.controller.streaming.grpc.tls }}
{{- default (printf "%s/ca.crt" (dir $t.certPath)) $t.caPath }}
{{- end }}

{{/*
Directory of a file path ("/etc/hibernator/certs/tls.crt" -> "/etc/hibernator/certs").
*/}}
{{- define "hibernator.dir" -}}
{{- dir . }}
{{- end }}
