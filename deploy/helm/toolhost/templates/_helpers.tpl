{{/* Names and labels. */}}

{{- define "toolhost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name when it already contains the chart's. */}}
{{- define "toolhost.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "toolhost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "toolhost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "toolhost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "toolhost.labels" -}}
helm.sh/chart: {{ include "toolhost.chart" . }}
{{ include "toolhost.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "toolhost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "toolhost.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Secrets: an existing one when named, else the one the chart creates from the value, else none (empty). */}}

{{- define "toolhost.postgresSecret" -}}
{{- if .Values.postgres.existingSecret -}}
{{- .Values.postgres.existingSecret -}}
{{- else if .Values.postgres.url -}}
{{- printf "%s-postgres" (include "toolhost.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "toolhost.redisSecret" -}}
{{- if .Values.redis.existingSecret -}}
{{- .Values.redis.existingSecret -}}
{{- else if .Values.redis.url -}}
{{- printf "%s-redis" (include "toolhost.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "toolhost.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if and .Values.tls.cert .Values.tls.key -}}
{{- printf "%s-tls" (include "toolhost.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the pod; the container's arguments and toolhost.toml agree on them. */}}
{{- define "toolhost.dataDir" -}}/var/lib/toolhost{{- end -}}
{{- define "toolhost.pluginsDir" -}}/plugins{{- end -}}
{{- define "toolhost.configDir" -}}/etc/toolhost{{- end -}}
{{- define "toolhost.tlsDir" -}}/etc/toolhost-tls{{- end -}}

{{/* Several replicas at once: a fixed count above one, or the autoscaler. */}}
{{- define "toolhost.manyReplicas" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* Refuses values that would deploy something broken, with the reason. */}}
{{- define "toolhost.validate" -}}
{{- $server := .Values.config.server | default dict -}}
{{- $publicUrl := get $server "public_url" | default "" -}}
{{- $cluster := .Values.config.cluster | default dict -}}
{{- if get $cluster "postgres_url" -}}
{{- fail "config.cluster.postgres_url would land in a ConfigMap: give the URL through postgres.existingSecret (or postgres.url) instead" -}}
{{- end -}}
{{- if and .Values.postgres.existingSecret .Values.postgres.url -}}
{{- fail "set postgres.existingSecret or postgres.url, not both" -}}
{{- end -}}
{{- if and $publicUrl (not (hasPrefix "https://" $publicUrl)) -}}
{{- fail (printf "config.server.public_url must be an https URL (the balancer's address), not %q" $publicUrl) -}}
{{- end -}}
{{- if include "toolhost.manyReplicas" . -}}
{{- if not (include "toolhost.postgresSecret" .) -}}
{{- fail "several replicas (replicaCount > 1 or autoscaling.enabled) need shared state: set postgres.existingSecret (or postgres.url)" -}}
{{- end -}}
{{- if not $publicUrl -}}
{{- fail "several replicas (replicaCount > 1 or autoscaling.enabled) must share one public URL: set config.server.public_url to the balancer's https address" -}}
{{- end -}}
{{- if .Values.persistence.enabled -}}
{{- fail "persistence.enabled gives one claim to every replica: with several replicas keep the state in PostgreSQL and the data dir on an emptyDir (persistence.enabled: false)" -}}
{{- end -}}
{{- end -}}
{{- if not (eq (empty .Values.tls.cert) (empty .Values.tls.key)) -}}
{{- fail "tls.cert and tls.key go together: set both or neither" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret (or .Values.tls.cert .Values.tls.key) -}}
{{- fail "set tls.existingSecret or tls.cert/tls.key, not both" -}}
{{- end -}}
{{- if .Values.podDisruptionBudget.enabled -}}
{{- $min := .Values.podDisruptionBudget.minAvailable -}}
{{- $replicas := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled | int -}}
{{- if and (not (kindIs "string" $min)) (ge (int $min) $replicas) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replica count (%d), or no node could ever be drained" (int $min) $replicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
toolhost.toml, from .Values.config with the keys the pod's layout decides
set over it. YAML maps become TOML tables, lists of maps arrays of inline
tables; null values are left out (toolhost's default applies).
*/}}
{{- define "toolhost.config" -}}
{{- $owned := dict
  "server" (dict
    "listen" (printf "0.0.0.0:%d" (int .Values.ports.https))
    "data_dir" (include "toolhost.dataDir" .)
    "log_format" "json")
  "plugins" (dict "dir" (include "toolhost.pluginsDir" .))
  "metrics" (dict "enabled" true "listen" (printf "0.0.0.0:%d" (int .Values.ports.metrics))) -}}
{{- if include "toolhost.tlsSecret" . -}}
{{- $_ := set $owned "tls" (dict
  "cert" (printf "%s/tls.crt" (include "toolhost.tlsDir" .))
  "key" (printf "%s/tls.key" (include "toolhost.tlsDir" .))) -}}
{{- end -}}
{{- $config := mergeOverwrite (deepCopy (.Values.config | default dict)) $owned -}}
# toolhost.toml, written by the toolhost Helm chart from its `config` value.
# Environment variables (TOOLHOST_SECTION__KEY) override it; the PostgreSQL
# URL comes that way, from a Secret.
{{ include "toolhost.tomlTable" (dict "path" "" "table" $config) }}
{{- end -}}

{{/* A key, bare when TOML allows it, else quoted. */}}
{{- define "toolhost.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* A value on one line: JSON's strings, numbers, booleans and arrays are TOML's; maps become inline tables. */}}
{{- define "toolhost.tomlValue" -}}
{{- if kindIs "map" . -}}
{{- $items := list -}}
{{- range $k, $v := . -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $items = append $items (printf "%s = %s" (include "toolhost.tomlKey" $k) (include "toolhost.tomlValue" $v)) -}}
{{- end -}}
{{- end -}}
{{- if $items -}}{ {{ join ", " $items }} }{{- else -}}{}{{- end -}}
{{- else if kindIs "slice" . -}}
{{- $items := list -}}
{{- range . -}}
{{- $items = append $items (include "toolhost.tomlValue" .) -}}
{{- end -}}
[{{ join ", " $items }}]
{{- else -}}
{{- toJson . -}}
{{- end -}}
{{- end -}}

{{/* A table: its plain keys under its [header], then its sub-tables. Takes (dict "path" "a.b" "table" map). */}}
{{- define "toolhost.tomlTable" -}}
{{- $path := .path -}}
{{- $lines := list -}}
{{- if $path -}}
{{- $lines = append $lines (printf "\n[%s]" $path) -}}
{{- end -}}
{{- range $k, $v := .table -}}
{{- if not (or (kindIs "map" $v) (kindIs "invalid" $v)) -}}
{{- $lines = append $lines (printf "%s = %s" (include "toolhost.tomlKey" $k) (include "toolhost.tomlValue" $v)) -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := .table -}}
{{- if kindIs "map" $v -}}
{{- $sub := include "toolhost.tomlKey" $k -}}
{{- if $path -}}{{- $sub = printf "%s.%s" $path $sub -}}{{- end -}}
{{- $lines = append $lines (include "toolhost.tomlTable" (dict "path" $sub "table" $v)) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $lines -}}
{{- end -}}
