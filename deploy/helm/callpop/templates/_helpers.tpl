{{- define "callpop.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* fullname: the release name, with the chart's name unless it holds it already. */}}
{{- define "callpop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "callpop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callpop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "callpop.labels" -}}
{{ include "callpop.selectorLabels" . }}
app.kubernetes.io/part-of: callpop
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* secretName: the Secret with the CRM token, JWT secret and PBX token. */}}
{{- define "callpop.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "callpop.fullname" .) -}}
{{- end -}}

{{/*
goMemLimit: .Values.goMemLimit, or 90 % of resources.limits.memory given in
Mi or Gi (docs/deploy.md: a little under the container's limit).
*/}}
{{- define "callpop.goMemLimit" -}}
{{- if .Values.goMemLimit -}}
{{- .Values.goMemLimit -}}
{{- else -}}
{{- $mem := toString (dig "limits" "memory" "" .Values.resources) -}}
{{- if hasSuffix "Gi" $mem -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Gi" $mem | atoi) 1024 9) 10) -}}
{{- else if hasSuffix "Mi" $mem -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Mi" $mem | atoi) 9) 10) -}}
{{- else -}}
{{- fail "set goMemLimit (e.g. 460MiB): resources.limits.memory is not in Mi or Gi, or not set" -}}
{{- end -}}
{{- end -}}
{{- end -}}
