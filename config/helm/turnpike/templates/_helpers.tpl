{{/* Name of the chart, overridable. */}}
{{- define "turnpike.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: the release name, plus the chart name unless it already has it. */}}
{{- define "turnpike.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "turnpike.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "turnpike.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: turnpike
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels naming one component, added to turnpike.labels: (dict "root" $ "component" "gateway"). */}}
{{- define "turnpike.componentLabels" -}}
app.kubernetes.io/name: {{ include "turnpike.fullname" .root }}-{{ .component }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector of one component's pods: (dict "root" $ "component" "gateway"). */}}
{{- define "turnpike.selectorLabels" -}}
{{ include "turnpike.componentLabels" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* An image reference from image.runtime or image.operator: digest wins over tag, tag defaults to appVersion. */}}
{{- define "turnpike.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context: non-root, fixed UID/GID of the images, RuntimeDefault seccomp. */}}
{{- define "turnpike.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: read-only root filesystem, no privilege escalation, no capabilities. */}}
{{- define "turnpike.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* An env var read from the runtime Secret: (dict "root" $ "name" "TURNPIKE_AMQP_URL" "key" "amqp-url"). */}}
{{- define "turnpike.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.runtime.existingSecret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Scheduling fields of a component's values (nodeSelector, tolerations, affinity). */}}
{{- define "turnpike.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Egress rules of a runtime pod: DNS plus the listed backing services. */}}
{{- define "turnpike.egress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- range $service := .services }}
{{- $target := index $.root.Values.networkPolicy $service }}
- ports:
    - port: {{ $target.port }}
      protocol: TCP
  {{- with $target.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}
