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
{{- if include "qiao.keysEnabled" . }}

# The key-encryption key file (docs/deploy-kubernetes.md, "Key file"): the
# Secret's copy, owned by the pod's user with mode 0400.
[keys]
provider = "file"
file = "{{ include "qiao.keyFilePath" . }}"

# The audit log's MAC key is wrapped by the same key file (docs/audit.md).
[audit]
key_file = "{{ include "qiao.keyFilePath" . }}"
{{- end }}
{{- end }}

{{/*
The key-encryption key file. "true" when keys.keyFile or keys.existingSecret
is given, empty otherwise.
*/}}
{{- define "qiao.keysEnabled" -}}
{{- if or .Values.keys.keyFile .Values.keys.existingSecret -}}
true
{{- end -}}
{{- end }}

{{/* Where the pods read the key file: a copy in a memory-backed emptyDir. */}}
{{- define "qiao.keyFileDir" -}}
/run/qiao-keys
{{- end }}

{{- define "qiao.keyFilePath" -}}
{{ include "qiao.keyFileDir" . }}/qiao-kek.json
{{- end }}

{{/* Where the init container reads the Secret. */}}
{{- define "qiao.keySecretDir" -}}
/run/qiao-keys-secret
{{- end }}

{{- define "qiao.keysSecretName" -}}
{{- .Values.keys.existingSecret | default (printf "%s-keys" (include "qiao.fullname" .)) -}}
{{- end }}

{{/* The key file as Secret data, when the chart owns the Secret. */}}
{{- define "qiao.keysSecretData" -}}
{{ .Values.keys.secretKey }}: {{ .Values.keys.keyFile | b64enc | quote }}
{{- end }}

{{- define "qiao.hookKeysSecretName" -}}
{{- .Values.keys.existingSecret | default (printf "%s-keys" (include "qiao.hookName" .)) -}}
{{- end }}

{{/*
The init container that puts the key file where Qiao reads it. Kubernetes
mounts Secret files owned by root, and with an fsGroup it adds group read
(0400 becomes 0440); Qiao refuses a key file that another user owns or that
its group can read (docs/crypto.md). So the Secret is mounted read-only into
this container only, and copied with `install -m 0400` into a memory-backed
emptyDir, where the copy belongs to the pod's user. The application
containers mount that emptyDir read-only.
Takes: dict "root" $.
*/}}
{{- define "qiao.keysInitContainer" -}}
{{- if not .root.Values.podSecurityContext.fsGroup }}
{{- fail "keys: podSecurityContext.fsGroup must be set (to runAsGroup) so that the pod's user can read the key Secret" }}
{{- end }}
- name: key-file
  image: {{ include "qiao.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command: ["install", "-m", "0400", "{{ include "qiao.keySecretDir" .root }}/qiao-kek.json", "{{ include "qiao.keyFilePath" .root }}"]
  volumeMounts:
    - name: key-secret
      mountPath: {{ include "qiao.keySecretDir" .root }}
      readOnly: true
    - name: key-file
      mountPath: {{ include "qiao.keyFileDir" .root }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      cpu: 100m
      memory: 32Mi
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
{{- if include "qiao.keysEnabled" . }}
- name: key-file
  mountPath: {{ include "qiao.keyFileDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of every Qiao pod: qiao.toml, a scratch /tmp (the root filesystem
is read-only) and, when a key file is configured, its Secret (mode 0400,
read by the init container only) and the memory-backed copy the containers read.
Takes: dict "root" $ "configMap" NAME "keysSecret" NAME.
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
{{- if include "qiao.keysEnabled" .root }}
- name: key-secret
  secret:
    secretName: {{ .keysSecret }}
    defaultMode: 0400
    items:
      - key: {{ .root.Values.keys.secretKey }}
        path: qiao-kek.json
        mode: 0400
- name: key-file
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
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
