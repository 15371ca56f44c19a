{{/*
The chart name, truncated to 63 characters (label values and DNS names).
*/}}
{{- define "kube-field-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the objects: <release>-<chart name>, or the release name when it
already contains the chart name; fullnameOverride wins.
*/}}
{{- define "kube-field-exporter.fullname" -}}
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

{{/*
The helm.sh/chart label value.
*/}}
{{- define "kube-field-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: stable across upgrades (Deployment selectors are immutable).
*/}}
{{- define "kube-field-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-field-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The labels of every object.
*/}}
{{- define "kube-field-exporter.labels" -}}
helm.sh/chart: {{ include "kube-field-exporter.chart" . }}
{{ include "kube-field-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kube-field-exporter.imageTag" . | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: metrics
app.kubernetes.io/part-of: {{ include "kube-field-exporter.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "kube-field-exporter.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- end -}}

{{/*
The image reference: repository@digest when a digest is set, else repository:tag.
*/}}
{{- define "kube-field-exporter.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "kube-field-exporter.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount's name.
*/}}
{{- define "kube-field-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kube-field-exporter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
One values.resources entry as its --resource value, in kubectl form:
<resource>[.<version>][.<group>][=<metricKind>].
*/}}
{{- define "kube-field-exporter.resourceFlag" -}}
{{- $parts := list .resource -}}
{{- with .version }}{{ $parts = append $parts . }}{{ end -}}
{{- with .group }}{{ $parts = append $parts . }}{{ end -}}
{{- join "." $parts -}}
{{- with .metricKind }}={{ . }}{{ end -}}
{{- end -}}

{{/*
Well-known cluster-scoped built-in resources, as "<group>/<resource>" ("" group: core).
Used only to stop a namespaced install that forgot `clusterScoped: true` (a Role cannot
grant them, the watch would be forbidden).
*/}}
{{- define "kube-field-exporter.knownClusterScoped" -}}
{{- list "/nodes" "/namespaces" "/persistentvolumes" "/componentstatuses"
    "storage.k8s.io/storageclasses" "storage.k8s.io/csidrivers" "storage.k8s.io/csinodes"
    "storage.k8s.io/volumeattachments" "scheduling.k8s.io/priorityclasses"
    "node.k8s.io/runtimeclasses" "networking.k8s.io/ingressclasses"
    "rbac.authorization.k8s.io/clusterroles" "rbac.authorization.k8s.io/clusterrolebindings"
    "apiextensions.k8s.io/customresourcedefinitions" "apiregistration.k8s.io/apiservices"
    "admissionregistration.k8s.io/mutatingwebhookconfigurations"
    "admissionregistration.k8s.io/validatingwebhookconfigurations"
    "certificates.k8s.io/certificatesigningrequests"
    "flowcontrol.apiserver.k8s.io/flowschemas"
    "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations"
    | toJson -}}
{{- end -}}

{{/*
The (group, resource) entries split by where RBAC grants them, as JSON:
{"namespaced": [...], "cluster": [...]}. Each entry is {"group": ..., "resource": ...}.
Without values.namespaces everything is granted cluster-wide; with them, namespaced
resources go to per-namespace Roles and cluster-scoped ones (and CRD reading) to the
ClusterRole.
*/}}
{{- define "kube-field-exporter.rbacEntries" -}}
{{- $known := include "kube-field-exporter.knownClusterScoped" . | fromJsonArray -}}
{{- $namespaced := list -}}
{{- $cluster := list -}}
{{- range .Values.resources -}}
{{- $entry := dict "group" (.group | default "") "resource" .resource -}}
{{- if and $.Values.namespaces (not .clusterScoped) -}}
{{- if has (printf "%s/%s" $entry.group $entry.resource) $known -}}
{{- fail (printf "resources: %s is cluster-scoped: set clusterScoped: true on its entry (namespaces is set, and a Role cannot grant it)" (include "kube-field-exporter.resourceFlag" .)) -}}
{{- end -}}
{{- $namespaced = append $namespaced $entry -}}
{{- else -}}
{{- $cluster = append $cluster $entry -}}
{{- end -}}
{{- end -}}
{{- if .Values.schemaReading -}}
{{- $cluster = append $cluster (dict "group" "apiextensions.k8s.io" "resource" "customresourcedefinitions") -}}
{{- end -}}
{{- dict "namespaced" $namespaced "cluster" $cluster | toJson -}}
{{- end -}}

{{/*
RBAC rules for a list of {"group", "resource"} entries: one rule per API group, its
resources sorted and unique, verbs exactly get, list, watch.
*/}}
{{- define "kube-field-exporter.rules" -}}
{{- $byGroup := dict -}}
{{- range . -}}
{{- $have := get $byGroup .group | default list -}}
{{- $_ := set $byGroup .group (append $have .resource | uniq) -}}
{{- end -}}
{{- range $group := keys $byGroup | sortAlpha }}
- apiGroups:
    - {{ $group | quote }}
  resources:
  {{- range get $byGroup $group | sortAlpha }}
    - {{ . | quote }}
  {{- end }}
  verbs:
    - get
    - list
    - watch
{{- end }}
{{- end -}}
