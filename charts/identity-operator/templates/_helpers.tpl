{{/* The chart name, shortened to a DNS label. */}}
{{- define "identity-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name, plus the chart name unless it already has it. */}}
{{- define "identity-operator.fullname" -}}
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

{{- define "identity-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "identity-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "identity-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "identity-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "identity-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "identity-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the operator takes the Lease: asked for, or needed because of several replicas. */}}
{{- define "identity-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* The watched namespaces, comma-separated; empty for all. Fails on the old single value. */}}
{{- define "identity-operator.watchNamespaces" -}}
{{- if .Values.watchNamespace }}
{{- fail "watchNamespace was replaced by watchNamespaces, a list: --set watchNamespaces={team-a} (or watchNamespaces: [team-a] in values)" }}
{{- end }}
{{- join "," (.Values.watchNamespaces | default list) }}
{{- end }}

{{- define "identity-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs where it watches. Each rule names the code that makes the calls; the
test tests/helm.rs holds the same list and checks it with `kubectl auth can-i`.
*/}}
{{- define "identity-operator.rules" -}}
# Watches and caches of the three kinds (src/controller/run.rs: watcher, Controller::watches).
- apiGroups: [identity-operator.io]
  resources: [identitybackends, identityproviders, applications]
  verbs: [list, watch]
# A fresh read of a referenced IdentityProvider or IdentityBackend when the cache lags behind a
# trigger (src/controller/application.rs referenced_idp, src/controller/managed.rs find_backend).
- apiGroups: [identity-operator.io]
  resources: [identitybackends, identityproviders]
  verbs: [get]
# Finalizer add/remove (kube::runtime::finalizer; the IdentityBackend's in-use finalizer in
# src/controller/identity_backend.rs) and the create-pending / secret-version annotations
# (src/controller/identity_provider.rs, application.rs): JSON and merge patches.
- apiGroups: [identity-operator.io]
  resources: [identitybackends, identityproviders, applications]
  verbs: [patch]
# Status by server-side apply (src/controller/mod.rs apply_status).
- apiGroups: [identity-operator.io]
  resources: [identitybackends/status, identityproviders/status, applications/status]
  verbs: [patch]
# The Application's credentials Secret carries a controller ownerReference with
# blockOwnerDeletion, which clusters with the OwnerReferencesPermissionEnforcement admission
# plugin allow only to who may update the owner's finalizers (src/controller/application.rs).
- apiGroups: [identity-operator.io]
  resources: [applications/finalizers]
  verbs: [update]
# Secrets: a metadata-only watch (run.rs), reads of credential Secrets (mod.rs read_secret,
# registry.rs; a value is used only when the Secret carries its identity-operator.io/use label, which
# RBAC cannot express), and the Application's credentials Secret by server-side apply, which creates it
# the first time (application.rs write_secret), and patch the credentials-in-use finalizer onto the
# Secrets a backend's client was built from (secret_hold.rs). No update, no delete.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
# Events (kube::runtime::events::Recorder: create, then patch for a repeated series).
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The ValidatingWebhookConfiguration the operator creates or updates (webhook.enabled). */}}
{{- define "identity-operator.webhookConfiguration" -}}
{{- .Values.webhook.configurationName | default (include "identity-operator.fullname" .) -}}
{{- end }}
