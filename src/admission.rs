//! Admission-time feedback on the IdentityProvider side (issue 20), with no webhook: two
//! `ValidatingAdmissionPolicy` objects (admissionregistration.k8s.io/v1, GA since Kubernetes 1.30)
//! and their bindings. Their CEL reads `oldObject.status.jitRequiredBy`, which the operator keeps
//! (the conflicts the rule would report if this IdP's JIT were off), so the apiserver decides alone:
//! with the operator stopped the policies still answer from the stored status.
//!
//! A binding's `validationActions` applies to every validation of its policy, and a binding cannot
//! select objects by a spec field, so Block and Warn are two policies told apart by a
//! `matchCondition` on `spec.conflictPolicy`: one bound with `[Deny]`, the other with `[Warn]`.
//! Status is a subresource: a spec update carries the stored status in `oldObject`, and the
//! operator's own status writes (`identityproviders/status`) are not matched.

use serde_json::{json, Value};

/// The default name prefix of the policies and bindings (cluster-scoped objects).
pub const DEFAULT_NAME: &str = "identity-operator";

/// Whether an update turns JIT off: the old spec had it on, the new one has no `jit` block or
/// `enabled: false` (a missing block counts as disabled, as in the conflict rule).
const TURNS_JIT_OFF: &str = "has(oldObject.spec.jit) && oldObject.spec.jit.enabled == true && \
     !(has(object.spec.jit) && object.spec.jit.enabled == true)";

/// The stored list (the status the operator last wrote), empty when it wrote none.
const REQUIRED_BY: &str = "has(oldObject.status) && has(oldObject.status.jitRequiredBy) ? \
     oldObject.status.jitRequiredBy : []";

/// One line per application step: its server name, its Application object when declared, the steps.
const STEPS: &str = "variables.requiredBy.map(r, r.application + \
     (has(r.applicationRef) ? \" (Application \" + r.applicationRef + \")\" : \"\") + \
     \": step \" + string(r.identityProviderStep) + \" offers this provider, step \" + \
     string(r.authenticatorStep) + \" requires \" + r.authenticator).join(\"; \")";

/// The two remedies, as the message names them.
const REMEDIES: &str = "Keep JIT provisioning on (spec.jit.enabled: true), or skip those steps \
     for this provider's users (skipFor on each step named, in the Application's loginFlow).";

/// Block or Warn: which `spec.conflictPolicy` a policy handles and how its binding acts.
#[derive(Clone, Copy)]
enum Mode {
    Block,
    Warn,
}

impl Mode {
    fn suffix(self) -> &'static str {
        match self {
            Mode::Block => "jit-required-block",
            Mode::Warn => "jit-required-warn",
        }
    }
}

/// What varies between installations: the name prefix (cluster-scoped names must not clash
/// between releases) and the namespaces the bindings cover (all when empty).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Prefix of the four objects' names; [`DEFAULT_NAME`] when empty.
    pub name: String,
    /// Namespaces the bindings match (by the `kubernetes.io/metadata.name` label); all when empty.
    pub namespaces: Vec<String>,
}

impl Options {
    fn prefix(&self) -> &str {
        if self.name.is_empty() {
            DEFAULT_NAME
        } else {
            &self.name
        }
    }
}

fn policy(opts: &Options, mode: Mode) -> Value {
    let (condition, message) = match mode {
        // Block is the default: a missing field (a stored object from before defaulting) is Block.
        Mode::Block => (
            "!has(object.spec.conflictPolicy) || object.spec.conflictPolicy == 'Block'",
            format!(
                "\"JIT provisioning cannot be turned off on IdentityProvider \" + object.metadata.name + \
                 \" (conflictPolicy: Block): these applications need a local account after it: \" + \
                 variables.steps + \". {REMEDIES}\""
            ),
        ),
        Mode::Warn => (
            "has(object.spec.conflictPolicy) && object.spec.conflictPolicy == 'Warn'",
            format!(
                "\"IdentityProvider \" + object.metadata.name + \" turns JIT provisioning off \
                 (conflictPolicy: Warn: the operator pushes it) while these applications need a \
                 local account after it; their logins through it will fail: \" + variables.steps + \
                 \". {REMEDIES}\""
            ),
        ),
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": format!("{}-{}", opts.prefix(), mode.suffix()),
            "labels": {"app.kubernetes.io/name": "identity-operator"},
        },
        "spec": {
            // A broken expression or an unreadable object must not stop every IdP update: the
            // reconciler's Block still holds the JIT change back.
            "failurePolicy": "Ignore",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["identity-operator.io"],
                    "apiVersions": ["v1alpha1"],
                    "operations": ["UPDATE"],
                    "resources": ["identityproviders"],
                }],
            },
            "matchConditions": [{"name": "conflict-policy", "expression": condition}],
            "variables": [
                {"name": "turnsJitOff", "expression": TURNS_JIT_OFF},
                {"name": "requiredBy", "expression": REQUIRED_BY},
                {"name": "steps", "expression": STEPS},
            ],
            "validations": [{
                "expression": "!variables.turnsJitOff || size(variables.requiredBy) == 0",
                "messageExpression": message,
                "reason": "Forbidden",
            }],
        },
    })
}

fn binding(opts: &Options, mode: Mode) -> Value {
    let name = format!("{}-{}", opts.prefix(), mode.suffix());
    let action = match mode {
        Mode::Block => "Deny",
        Mode::Warn => "Warn",
    };
    let mut spec = json!({"policyName": name, "validationActions": [action]});
    if !opts.namespaces.is_empty() {
        spec["matchResources"] = json!({
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": opts.namespaces,
            }]},
        });
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "identity-operator"}},
        "spec": spec,
    })
}

/// The four objects: the Block policy and its binding, the Warn policy and its binding.
pub fn objects(opts: &Options) -> Vec<Value> {
    vec![
        policy(opts, Mode::Block),
        binding(opts, Mode::Block),
        policy(opts, Mode::Warn),
        binding(opts, Mode::Warn),
    ]
}

/// The objects as one multi-document YAML file (what `identity-operator admission-policy` prints
/// and the chart's `files/admission-policy.yaml` holds).
pub fn yaml(opts: &Options) -> Result<String, serde_saphyr::SerializeError> {
    let mut out =
        String::from("# Generated by `identity-operator admission-policy`; do not edit by hand.\n");
    for o in objects(opts) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&o)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };

    #[test]
    fn the_objects_are_well_typed_and_each_binding_names_its_policy() {
        let opts = Options {
            name: "t".into(),
            namespaces: vec!["ns-a".into()],
        };
        let o = objects(&opts);
        for pair in o.chunks(2) {
            let p: ValidatingAdmissionPolicy =
                serde_json::from_value(pair[0].clone()).expect("policy");
            let b: ValidatingAdmissionPolicyBinding =
                serde_json::from_value(pair[1].clone()).expect("binding");
            let (p, b) = (p.spec.expect("spec"), b.spec.expect("spec"));
            assert_eq!(
                b.policy_name.as_deref(),
                pair[0]["metadata"]["name"].as_str()
            );
            assert_eq!(p.variables.map(|v| v.len()), Some(3));
            let sel = b
                .match_resources
                .and_then(|m| m.namespace_selector)
                .expect("selector");
            assert_eq!(
                sel.match_expressions.expect("expr")[0].values,
                Some(vec!["ns-a".into()])
            );
        }
        assert_eq!(o[1]["spec"]["validationActions"], json!(["Deny"]));
        assert_eq!(o[3]["spec"]["validationActions"], json!(["Warn"]));
        // Without namespaces the bindings match every namespace.
        assert!(objects(&Options::default())[1]["spec"]
            .get("matchResources")
            .is_none());
    }
}
