{{/* Names: <release>-<chart>, or the release name when it holds the chart's. */}}
{{- define "kubist.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubist.fullname" -}}
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

{{- define "kubist.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kubist.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubist
{{- end -}}

{{- define "kubist.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubist.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end -}}

{{- /* The selector labels of one shard's Deployment: (list $ shard). */ -}}
{{- define "kubist.shardSelectorLabels" -}}
{{ include "kubist.selectorLabels" (index . 0) }}
{{- with index . 1 }}
kubist.io/shard: {{ . }}
{{- end }}
{{- end -}}

{{- define "kubist.serviceAccountName" -}}
{{- default (include "kubist.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The webhook Service, also the name of both webhook configurations. */}}
{{- define "kubist.webhookName" -}}
{{- printf "%s-webhook" (include "kubist.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret the webhook server's certificate is read from (cert-manager) or kept in (self-managed). */}}
{{- define "kubist.webhookSecret" -}}
{{- if .Values.certManager.enabled -}}
{{- printf "%s-webhook-tls" (include "kubist.fullname" .) -}}
{{- else -}}
{{- printf "%s-webhook-self-managed" (include "kubist.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "kubist.webhookDNSNames" -}}
{{- $svc := include "kubist.webhookName" . -}}
- {{ $svc }}
- {{ $svc }}.{{ .Release.Namespace }}
- {{ $svc }}.{{ .Release.Namespace }}.svc
- {{ $svc }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end -}}

{{- define "kubist.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the webhook server reads tls.crt and tls.key. */}}
{{- define "kubist.certDir" -}}/tmp/k8s-webhook-server/serving-certs{{- end -}}

{{/*
kubist.generatedDocs parses the documents of a generated manifest file
(files/..., synced by `make manifests`) into a JSON list, for templates to
rename and relabel.
*/}}
{{- define "kubist.generatedDocs" -}}
{{- $docs := list -}}
{{- range $raw := regexSplit "(?m)^---\\s*$" (.root.Files.Get .file) -1 -}}
{{- if trim $raw -}}
{{- $docs = append $docs (fromYaml $raw) -}}
{{- end -}}
{{- end -}}
{{- toJson $docs -}}
{{- end -}}
