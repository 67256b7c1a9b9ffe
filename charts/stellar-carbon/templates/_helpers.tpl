{{/* Names are truncated to 63 characters because some Kubernetes name fields are limited to
     this by the DNS naming spec. */}}
{{- define "stellar-carbon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stellar-carbon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stellar-carbon.webhook.fullname" -}}
{{- printf "%s-webhook" (include "stellar-carbon.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stellar-carbon.reporter.fullname" -}}
{{- printf "%s-reporter" (include "stellar-carbon.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* "true" when the reporter keeps its history in an SQLite file (no PostgreSQL URL given). */ -}}
{{- define "stellar-carbon.reporter.sqliteHistory" -}}
{{- if not (or .Values.reporter.history.url .Values.reporter.history.existingSecret) -}}true{{- end -}}
{{- end }}

{{- /* The Karmada controller the reporter reads policies from: reporter.karmadaUrl, else this
     release's controller Service when karmada.enabled, else none. */ -}}
{{- define "stellar-carbon.reporter.karmadaUrl" -}}
{{- if .Values.reporter.karmadaUrl -}}
{{- .Values.reporter.karmadaUrl -}}
{{- else if .Values.karmada.enabled -}}
{{- printf "http://%s.%s.svc:%v" (include "stellar-carbon.karmada.fullname" .) .Release.Namespace .Values.karmada.healthPort -}}
{{- end -}}
{{- end }}

{{- define "stellar-carbon.tiers.fullname" -}}
{{- printf "%s-tiers" (include "stellar-carbon.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stellar-carbon.karmada.fullname" -}}
{{- printf "%s-karmada" (include "stellar-carbon.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The webhook configuration is cluster-scoped: include the namespace so two releases in
     different namespaces do not collide. */}}
{{- define "stellar-carbon.webhook.configName" -}}
{{- printf "%s-%s" (include "stellar-carbon.webhook.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stellar-carbon.webhook.tlsSecret" -}}
{{- if eq .Values.webhook.tls.mode "secret" }}
{{- .Values.webhook.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "stellar-carbon.webhook.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "stellar-carbon.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "stellar-carbon.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stellar-carbon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stellar-carbon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stellar-carbon.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "stellar-carbon.emSecretName" -}}
{{- if .Values.carbon.electricityMaps.existingSecret }}
{{- .Values.carbon.electricityMaps.existingSecret }}
{{- else }}
{{- printf "%s-carbon" (include "stellar-carbon.fullname" .) }}
{{- end }}
{{- end }}

{{- define "stellar-carbon.httpSecretName" -}}
{{- if .Values.carbon.http.existingSecret }}
{{- .Values.carbon.http.existingSecret }}
{{- else }}
{{- printf "%s-carbon" (include "stellar-carbon.fullname" .) }}
{{- end }}
{{- end }}

{{/* Carbon settings shared by both components: the ConfigMap plus secret references. */}}
{{- define "stellar-carbon.carbonEnv" -}}
- name: STELLAR_CARBON_PROVIDERS
  value: {{ join "," .Values.carbon.providers | quote }}
- name: STELLAR_CARBON_ELECTRICITYMAPS_URL
  value: {{ .Values.carbon.electricityMaps.url | quote }}
- name: STELLAR_CARBON_EMISSION_FACTOR_TYPE
  value: {{ .Values.carbon.electricityMaps.emissionFactorType | quote }}
{{- if or .Values.carbon.electricityMaps.token .Values.carbon.electricityMaps.existingSecret }}
- name: STELLAR_CARBON_ELECTRICITYMAPS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "stellar-carbon.emSecretName" . }}
      key: {{ ternary .Values.carbon.electricityMaps.existingSecretKey "electricitymaps-token" (ne .Values.carbon.electricityMaps.existingSecret "") }}
{{- end }}
{{- with .Values.carbon.carbonAwareSdk.url }}
- name: STELLAR_CARBON_CARBONAWARE_URL
  value: {{ . | quote }}
- name: STELLAR_CARBON_CARBONAWARE_LOCATION
  value: {{ $.Values.carbon.carbonAwareSdk.location | quote }}
{{- end }}
{{- with .Values.carbon.http.url }}
- name: STELLAR_CARBON_CUSTOM_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.carbon.http.forecastUrl }}
- name: STELLAR_CARBON_CUSTOM_FORECAST_URL
  value: {{ . | quote }}
{{- end }}
{{- if or .Values.carbon.http.token .Values.carbon.http.existingSecret }}
- name: STELLAR_CARBON_CUSTOM_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "stellar-carbon.httpSecretName" . }}
      key: {{ ternary .Values.carbon.http.existingSecretKey "http-token" (ne .Values.carbon.http.existingSecret "") }}
{{- end }}
{{- with .Values.carbon.redisUrl }}
- name: STELLAR_CARBON_REDIS_URL
  value: {{ . | quote }}
{{- end }}
- name: STELLAR_CARBON_CURRENT_TTL
  value: {{ .Values.carbon.currentTtlSeconds | quote }}
- name: STELLAR_CARBON_FORECAST_TTL
  value: {{ .Values.carbon.forecastTtlSeconds | quote }}
- name: STELLAR_CARBON_MAX_STALE
  value: {{ .Values.carbon.maxStaleSeconds | quote }}
- name: STELLAR_CARBON_REFRESH_INTERVAL
  value: {{ .Values.carbon.refreshIntervalSeconds | quote }}
- name: STELLAR_CARBON_HORIZON_HOURS
  value: {{ .Values.carbon.horizonHours | quote }}
{{- with .Values.carbon.regionLabel }}
- name: STELLAR_CARBON_REGION_LABEL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.carbon.extraRegions }}
- name: STELLAR_CARBON_EXTRA_REGIONS
  value: {{ join "," . | quote }}
{{- end }}
{{- if .Values.carbon.regionOverrides }}
- name: STELLAR_CARBON_REGION_OVERRIDES
  value: /etc/stellar-carbon/regions.yaml
{{- end }}
{{- end }}

{{- define "stellar-carbon.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* What both services may reach when networkPolicy.egress is enabled: DNS, the API server (the
     node inventory and workload watches; the webhook's Secret and configuration) and the carbon
     provider(s) and shared cache. Nothing else. */}}
{{- define "stellar-carbon.networkPolicy.egress" -}}
{{- $egress := .Values.networkPolicy.egress }}
# DNS, to find the API server and the carbon provider.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# The Kubernetes API server. Policies see the endpoint behind the kubernetes Service (often port
# 6443), not its ClusterIP, so list both ports; apiServerCidrs narrows the destination.
- ports:
    {{- range $egress.apiServerPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $egress.apiServerCidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
# The carbon provider(s) and, with carbon.redisUrl, the shared cache: carbonPorts to carbonTo.
- ports:
    {{- range $egress.carbonPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $egress.carbonTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
