{{/* The operator's name: <release>-operator, also its Service's. */}}
{{- define "sidelight.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sidelight.tlsSecret" -}}
{{- printf "%s-tls" (include "sidelight.fullname" .) -}}
{{- end -}}

{{- define "sidelight.injectionConfig" -}}
{{- printf "%s-injection" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sidelight.usageClaim" -}}
{{- printf "%s-usage" (include "sidelight.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "true" when the operator runs the trace relay: a tracing endpoint, not direct. */}}
{{- define "sidelight.traceRelay" -}}
{{- if and .Values.tracing.endpoint (not .Values.tracing.direct) -}}true{{- end -}}
{{- end -}}

{{/* The OTLP base URL the sidecars export to; empty: none (values.yaml, tracing). */}}
{{- define "sidelight.sidecarOtlpEndpoint" -}}
{{- if .Values.sidecar.otlpEndpoint -}}
{{- .Values.sidecar.otlpEndpoint -}}
{{- else if include "sidelight.traceRelay" . -}}
{{- printf "https://%s" (default (printf "%s:%v" (include "sidelight.serviceHost" .) .Values.ports.otlp) .Values.tracing.relayAddress) -}}
{{- else -}}
{{- .Values.tracing.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "sidelight.labels" -}}
app.kubernetes.io/name: sidelight
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selects the operator's pods; sidelight.io/operator keeps the webhook off them. */}}
{{- define "sidelight.selectorLabels" -}}
app.kubernetes.io/name: sidelight
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
sidelight.io/operator: "true"
{{- end -}}

{{- define "sidelight.serviceHost" -}}
{{- printf "%s.%s.svc" (include "sidelight.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* The DNS names of the serving certificate. */}}
{{- define "sidelight.dnsNames" -}}
{{- $name := include "sidelight.fullname" . -}}
{{- $names := list $name (printf "%s.%s" $name .Release.Namespace) (include "sidelight.serviceHost" .) (printf "%s.cluster.local" (include "sidelight.serviceHost" .)) -}}
{{- concat $names .Values.tls.extraDNSNames | toJson -}}
{{- end -}}

{{- define "sidelight.image" -}}
{{- printf "%s:%s" .repository (default .appVersion .tag) -}}
{{- end -}}
