{{/*
Names, labels and small shared pieces of the taskiq-fleet chart.
*/}}

{{/* The chart's short name, overridable with nameOverride. */}}
{{- define "taskiq-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name. A release called like the chart (or containing
its name) is not repeated: release "taskiq-fleet" gives "taskiq-fleet", not
"taskiq-fleet-taskiq-fleet".
*/}}
{{- define "taskiq-fleet.fullname" -}}
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

{{- define "taskiq-fleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods; never change them on upgrade. */}}
{{- define "taskiq-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskiq-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object the chart renders. */}}
{{- define "taskiq-fleet.labels" -}}
helm.sh/chart: {{ include "taskiq-fleet.chart" . }}
app.kubernetes.io/name: {{ include "taskiq-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: taskiq-fleet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The operator's labels: the common ones plus its component. */}}
{{- define "taskiq-fleet.operatorLabels" -}}
{{ include "taskiq-fleet.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "taskiq-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskiq-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "taskiq-fleet.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The namespace that holds the monitoring objects: the release's unless told.
Call with a dict: (dict "ctx" $ "namespace" .Values.some.namespace).
*/}}
{{- define "taskiq-fleet.monitoringNamespace" -}}
{{- default .ctx.Release.Namespace .namespace }}
{{- end }}

{{/*
True ("true") when the cluster serves the Prometheus Operator's API. Monitoring
objects render only then, so an install on a cluster without it still succeeds.
*/}}
{{- define "taskiq-fleet.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end }}
{{- end }}

{{/*
The scrape job name shared by the operator's ServiceMonitor or PodMonitor; the
alert rules select the operator's `up` series by it.
*/}}
{{- define "taskiq-fleet.metricsJob" -}}
taskiq-fleet-operator
{{- end }}
