{{/*
Streaming Services and the endpoints runner Jobs are told about.

The controller Service (`<fullname>-controller`) serves gRPC on grpc.port and
the streaming webhook on webhook.port. With controller.streaming.aliasServices
(default on) the names of the streaming journey and the RFC are served too:
`<fullname>-grpc-service` (gRPC, grpc.port) and `<fullname>-webhook` (the
streaming webhook on 8080 and webhook.port; the admission webhook on 443 and
9443). Endpoint values must name one of these Services on a port it serves
(refused at render time otherwise, naming the right one); a bare Service name
is qualified with the release namespace, because runner Jobs run in the plans'
namespaces.
*/}}

{{- define "hibernator.grpcAliasName" -}}
{{- printf "%s-grpc-service" (include "hibernator.fullname" .) }}
{{- end }}

{{- define "hibernator.webhookAliasName" -}}
{{- printf "%s-webhook" (include "hibernator.fullname" .) }}
{{- end }}

{{/* Port of the streaming webhook on the `<fullname>-webhook` alias Service. */}}
{{- define "hibernator.webhookAliasPort" -}}8080{{- end }}

{{/*
Checks that `host` (no port) names one of `services` (dict name -> list of
ports) in the release namespace and `port` is one of its ports. Output: the
host, qualified with `<namespace>.svc` when it was a bare name, or a line
starting with "!" that says what is wrong.
Arguments: dict "host" "port" "services" "namespace".
*/}}
{{- define "hibernator.chartServiceHost" -}}
{{- $parts := splitList "." .host }}
{{- $svc := first $parts }}
{{- $rest := rest $parts | join "." }}
{{- $ns := .namespace }}
{{- $inNamespace := or (eq $rest "") (eq $rest $ns) (eq $rest (printf "%s.svc" $ns)) (hasPrefix (printf "%s.svc." $ns) $rest) }}
{{- if not (hasKey .services $svc) }}
{{- printf "!this chart renders no Service %q" $svc }}
{{- else if not $inNamespace }}
{{- printf "!%q is not the release namespace %q (the Services are there)" (first (splitList "." $rest)) $ns }}
{{- else if not (has (toString .port) (get .services $svc)) }}
{{- printf "!Service %s serves it on port %s, not %s" $svc (get .services $svc | join " and ") (toString .port) }}
{{- else if eq $rest "" }}
{{- printf "%s.%s.svc" $svc $ns }}
{{- else }}
{{- .host }}
{{- end }}
{{- end }}

{{/*
gRPC endpoint runner Jobs dial: grpc.endpoint (checked, a bare Service name
qualified), else `[https://]<fullname>-controller.<namespace>.svc:<port>`.
*/}}
{{- define "hibernator.grpcEndpoint" -}}
{{- $s := .Values.controller.streaming }}
{{- $g := $s.grpc }}
{{- $ns := .Release.Namespace }}
{{- $ctrl := include "hibernator.controllerName" . }}
{{- $scheme := ternary "https://" "" $g.tls.enabled }}
{{- $default := printf "%s%s.%s.svc:%d" $scheme $ctrl $ns (int $g.port) }}
{{- if not $g.endpoint }}
{{- $default }}
{{- else if or $s.externalEndpoints (not (and $s.enabled $g.enabled)) }}
{{- $g.endpoint }}
{{- else }}
{{- $given := $g.endpoint | trim }}
{{- $prefix := "" }}
{{- range $p := list "https://" "http://" }}
{{- if hasPrefix $p $given }}{{ $prefix = $p }}{{ end }}
{{- end }}
{{- $hostport := trimPrefix $prefix $given | trimSuffix "/" }}
{{- $parts := splitList ":" $hostport }}
{{- $services := dict $ctrl (list (toString (int $g.port))) }}
{{- if $s.aliasServices }}{{ $_ := set $services (include "hibernator.grpcAliasName" .) (list (toString (int $g.port))) }}{{ end }}
{{- $host := "!it is not host:port" }}
{{- if eq (len $parts) 2 }}
{{- $host = include "hibernator.chartServiceHost" (dict "host" (first $parts) "port" (last $parts) "services" $services "namespace" $ns) }}
{{- end }}
{{- if hasPrefix "!" $host }}
{{- $alias := ternary (printf " or %s%s.%s.svc:%d" $scheme (include "hibernator.grpcAliasName" .) $ns (int $g.port)) "" (not (not $s.aliasServices)) }}
{{- fail (printf "controller.streaming.grpc.endpoint %q points at no gRPC Service this chart renders (%s): runners can reach %s%s; set controller.streaming.externalEndpoints=true for an address in front of the controller (a proxy)" $given (trimPrefix "!" $host) $default $alias) }}
{{- end }}
{{- printf "%s%s:%s" $prefix $host (last $parts) }}
{{- end }}
{{- end }}

{{/*
Logs URL runner Jobs post to: webhook.endpoint (checked, a bare Service name
qualified), else `http://<fullname>-controller.<namespace>.svc:<port>/logs`.
*/}}
{{- define "hibernator.webhookEndpoint" -}}
{{- $s := .Values.controller.streaming }}
{{- $w := $s.webhook }}
{{- $ns := .Release.Namespace }}
{{- $ctrl := include "hibernator.controllerName" . }}
{{- $default := printf "http://%s.%s.svc:%d/logs" $ctrl $ns (int $w.port) }}
{{- if not $w.endpoint }}
{{- $default }}
{{- else if or $s.externalEndpoints (not (and $s.enabled $w.enabled)) }}
{{- $w.endpoint }}
{{- else }}
{{- $given := $w.endpoint | trim }}
{{- $u := urlParse $given }}
{{- $parts := splitList ":" $u.host }}
{{- $port := ternary (last $parts) "80" (eq (len $parts) 2) }}
{{- $services := dict $ctrl (list (toString (int $w.port))) }}
{{- $aliasPorts := list (include "hibernator.webhookAliasPort" .) (toString (int $w.port)) | uniq }}
{{- if $s.aliasServices }}{{ $_ := set $services (include "hibernator.webhookAliasName" .) $aliasPorts }}{{ end }}
{{- $host := "" }}
{{- if ne $u.scheme "http" }}
{{- $host = "!the streaming webhook serves plain http://" }}
{{- else if ne $u.path "/logs" }}
{{- $host = printf "!runners post to the path /logs, not %q" $u.path }}
{{- else }}
{{- $host = include "hibernator.chartServiceHost" (dict "host" (first $parts) "port" $port "services" $services "namespace" $ns) }}
{{- end }}
{{- if hasPrefix "!" $host }}
{{- $alias := ternary (printf " or http://%s.%s.svc:%s/logs" (include "hibernator.webhookAliasName" .) $ns (include "hibernator.webhookAliasPort" .)) "" (not (not $s.aliasServices)) }}
{{- fail (printf "controller.streaming.webhook.endpoint %q points at no streaming webhook this chart serves (%s): runners can post to %s%s; set controller.streaming.externalEndpoints=true for an address in front of the controller (a proxy)" $given (trimPrefix "!" $host) $default $alias) }}
{{- end }}
{{- printf "http://%s:%s/logs" $host $port }}
{{- end }}
{{- end }}

{{/* Secret of forwarder credentials given inline (datadog.apiKey, splunk.token). */}}
{{- define "hibernator.sinksSecretName" -}}
{{- printf "%s-sink-credentials" (include "hibernator.fullname" .) }}
{{- end }}
