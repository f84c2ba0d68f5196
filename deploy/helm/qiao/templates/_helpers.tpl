{{/*
Shared pieces of the qiao chart.

Convention: templates read values as full paths from .Values (or from
.root.Values inside helpers that take a dict) and never through `with`, so
tests/deploy can check every path against values.yaml.
*/}}

{{/* The chart name, unless nameOverride replaces it. */}}
{{- define "qiao.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end }}

{{/*
The prefix of every resource name: "<release>-qiao", or just the release name
when it already starts with the chart name. Cut to 52 characters so that the
longest suffix used ("-database") still fits the 63-character limit on names.
*/}}
{{- define "qiao.fullname" -}}
{{- $name := include "qiao.name" . -}}
{{- $full := printf "%s-%s" .Release.Name $name -}}
{{- if hasPrefix $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- end -}}
{{- .Values.fullnameOverride | default $full | trunc 52 | trimSuffix "-" -}}
{{- end }}

{{/* Labels every resource carries. */}}
{{- define "qiao.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "qiao.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qiao
{{- end }}

{{/*
Labels that pick one component's pods (api, migrate). Selectors are
immutable on a Deployment, so nothing that can change between releases
(version, chart) goes in here.
Takes: dict "root" $ "component" NAME.
*/}}
{{- define "qiao.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qiao.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of a component's resources: the common ones plus the component. */}}
{{- define "qiao.componentLabels" -}}
{{ include "qiao.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* image: repository plus digest when pinned, else plus tag (default: appVersion). */}}
{{- define "qiao.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* The port `qiao serve` listens on in the pods; the same as the image's EXPOSE. */}}
{{- define "qiao.httpPort" -}}
8000
{{- end }}

{{/* Where qiao.toml is mounted; QIAO_CONFIG points at it. */}}
{{- define "qiao.configPath" -}}
/etc/qiao/qiao.toml
{{- end }}

{{/*
The contents of qiao.toml: only the tables Qiao reads (core/config.py). The
ConfigMap the API pods mount and the hook ConfigMap the migration Job mounts
both render this, so the two can never disagree.
*/}}
{{- define "qiao.configToml" -}}
# Rendered by the qiao Helm chart from its values (config.*); edit those, not this file.

[database]
# The URL comes from QIAO_DATABASE_URL, set from a Secret, so that no
# password is written into a ConfigMap.

[plugins]
enabled = {{ toJson .Values.config.plugins }}

[server]
host = "0.0.0.0"
port = {{ include "qiao.httpPort" . }}

[metadata]
check_interval = {{ .Values.config.metadataCheckInterval }}
{{- end }}

{{/* Names of the objects the API pods read. */}}
{{- define "qiao.configMapName" -}}
{{ include "qiao.fullname" . }}-config
{{- end }}

{{- define "qiao.databaseSecretName" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "qiao.fullname" .)) -}}
{{- end }}

{{/*
The migration Job runs as a pre-install hook, before Helm creates the
release's ordinary objects, so it cannot read them on a first install. It
reads hook copies instead (hook-config.yaml, hook-secret.yaml), which Helm
creates just before it and deletes once the hooks have succeeded. An
existing Secret named in database.existingSecret is read directly: it is
there already.
*/}}
{{- define "qiao.hookName" -}}
{{ include "qiao.fullname" . }}-migrate
{{- end }}

{{- define "qiao.hookDatabaseSecretName" -}}
{{- .Values.database.existingSecret | default (include "qiao.hookName" .) -}}
{{- end }}

{{/*
The database URL as Secret data, when the chart owns the Secret.
`required` stops the release when neither database.url nor
database.existingSecret is given, rather than starting pods that cannot work.
(The schema cannot tell an unset url from the default "", so this check is
here.)
*/}}
{{- define "qiao.databaseSecretData" -}}
{{ .Values.database.secretKey }}: {{ required "database.url (or database.existingSecret) is required" .Values.database.url | b64enc | quote }}
{{- end }}

{{/*
Environment of every Qiao container.
Takes: dict "root" $ "databaseSecret" NAME.
*/}}
{{- define "qiao.env" -}}
- name: QIAO_CONFIG
  value: {{ include "qiao.configPath" .root | quote }}
- name: QIAO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .databaseSecret }}
      key: {{ .root.Values.database.secretKey }}
{{- if .root.Values.extraEnv }}
{{ toYaml .root.Values.extraEnv }}
{{- end }}
{{- end }}

{{/* Mounts of every Qiao container; the volumes come from "qiao.volumes". */}}
{{- define "qiao.volumeMounts" -}}
- name: config
  mountPath: /etc/qiao
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Volumes of every Qiao pod: qiao.toml, and a scratch /tmp (the root
filesystem is read-only).
Takes: dict "root" $ "configMap" NAME.
*/}}
{{- define "qiao.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
    items:
      - key: qiao.toml
        path: qiao.toml
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpVolume.sizeLimit }}
{{- end }}

{{/*
Pod-spec settings every Qiao pod shares.
Service links are off because Kubernetes would otherwise inject variables
such as QIAO_PORT=tcp://10.0.0.1:80 for a Service named "qiao", which
Qiao reads as its own settings.
*/}}
{{- define "qiao.podCommon" -}}
enableServiceLinks: false
automountServiceAccountToken: false
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName }}
{{- end }}
{{- if .Values.imagePullSecrets }}
imagePullSecrets:
{{- range .Values.imagePullSecrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
