//! Proof, not belief: for random login flows, identity providers with JIT on or off (and, when on,
//! with or without account lookup and skipping JIT on lookup failure) and skipFor declarations, the pure conflict rule (`flow::check_flow`) reports a conflict exactly when some
//! login of a federated user fails for want of a local account, as simulated by the emulator's
//! script engine running the script the operator generates (`flow::script::generate`). Each IdP's
//! JIT is a server JIT object: the rule reads it as `audit` does (`backend::Jit::rule_state`), the
//! simulated login as the emulator does (`simulate::provisions_unmatched_user`), for a user whom no
//! local account matches.

use std::collections::{HashMap, HashSet};

use identity_emulator::simulate::provisions_unmatched_user;
use identity_model::proof::{run_login, Choice};
use identity_operator::backend::{wire, Jit as ServerJit};
use identity_operator::flow::{
    self, script, Flow, FlowOption, Jit, LocalAccountAuthenticators, ScriptOrigin, Skip,
};
use proptest::prelude::*;

const IDPS: &[&str] = &["Okta", "Google", "GitHub"];
const LOCALS: &[&str] = &[
    "BasicAuthenticator",
    "totp",
    "email-otp-authenticator",
    "MagicLinkAuthenticator",
];

fn option() -> impl Strategy<Value = FlowOption> {
    prop_oneof![
        prop::sample::select(IDPS).prop_map(|n| FlowOption::IdentityProvider(n.to_owned())),
        prop::sample::select(LOCALS).prop_map(|n| FlowOption::Authenticator(n.to_owned())),
    ]
}

fn skip() -> impl Strategy<Value = Skip> {
    prop_oneof![
        2 => Just(Skip::Never),
        2 => prop::sample::subsequence(IDPS, 1..=2)
            .prop_map(|v| Skip::For(v.into_iter().map(str::to_owned).collect())),
        1 => Just(Skip::FederatedUsers),
    ]
}

fn flow_strategy() -> impl Strategy<Value = Flow> {
    (2usize..=4)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(prop::collection::vec(option(), 1..=3), n),
                prop::collection::vec(skip(), n - 1),
            )
        })
        .prop_map(|(steps, rest)| {
            let steps: Vec<Vec<FlowOption>> = steps
                .into_iter()
                .map(|s| {
                    let mut seen = HashSet::new();
                    s.into_iter().filter(|o| seen.insert(o.clone())).collect()
                })
                .collect();
            let mut skips = vec![Skip::Never];
            skips.extend(rest);
            Flow {
                steps,
                skips,
                script: ScriptOrigin::Generated,
            }
        })
}

/// Each IdP's JIT object on the server: on or off, account lookup or not, skip on lookup failure
/// or not (every combination, so "on, but skipped on lookup failure" comes up often).
fn jit_strategy() -> impl Strategy<Value = HashMap<String, wire::JustInTimeProvisioning>> {
    prop::collection::vec(any::<(bool, bool, bool)>(), IDPS.len()).prop_map(|settings| {
        IDPS.iter()
            .zip(settings)
            .map(|(n, (on, lookup, skip))| {
                let jit = wire::JustInTimeProvisioning {
                    is_enabled: Some(on),
                    account_lookup_attribute_mappings: lookup.then(|| {
                        vec![wire::AccountLookupAttributeMapping {
                            local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
                            federated_attribute: Some("email".into()),
                        }]
                    }),
                    skip_jit_for_lookup_failure: Some(skip),
                    ..Default::default()
                };
                ((*n).to_owned(), jit)
            })
            .collect()
    })
}

/// The rule's view of the servers' JIT objects, as `audit` reads them.
fn rule_view(jit: &HashMap<String, wire::JustInTimeProvisioning>) -> HashMap<String, Jit> {
    jit.iter()
        .map(|(n, w)| (n.clone(), ServerJit::from(w).rule_state()))
        .collect()
}

/// Every way through the flow: one option per step.
fn all_logins(flow: &Flow) -> Vec<Vec<&FlowOption>> {
    let mut out: Vec<Vec<&FlowOption>> = vec![vec![]];
    for step in &flow.steps {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                step.iter().map(move |o| {
                    let mut p = prefix.clone();
                    p.push(o);
                    p
                })
            })
            .collect();
    }
    out
}

fn choice(
    o: &FlowOption,
    jit: &HashMap<String, wire::JustInTimeProvisioning>,
    needs: &LocalAccountAuthenticators,
) -> Choice {
    match o {
        FlowOption::IdentityProvider(n) => Choice {
            idp: n.clone(),
            authenticator: "OpenIDConnectAuthenticator".into(),
            federated: true,
            needs_local: false,
            jit_on: jit.get(n).is_some_and(provisions_unmatched_user),
        },
        FlowOption::Authenticator(a) => Choice {
            idp: "LOCAL".into(),
            authenticator: a.clone(),
            federated: false,
            needs_local: needs.contains(a),
            jit_on: false,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_rule_says_conflict_exactly_when_a_simulated_login_fails(
        flow in flow_strategy(),
        jit in jit_strategy(),
    ) {
        let needs = LocalAccountAuthenticators::default();
        let analysis = flow::check_flow("app", &flow, &rule_view(&jit), &needs);
        let generated = script::generate(&flow);
        prop_assert!(
            script::recognize(&generated, &flow.steps).is_some(),
            "the generated script is recognized as the operator's"
        );
        let mut failing = None;
        for login in all_logins(&flow) {
            let choices: Vec<Choice> = login.iter().map(|o| choice(o, &jit, &needs)).collect();
            let outcome = run_login(Some(&generated), &choices).expect("engine runs");
            prop_assert!(
                outcome.success || outcome.failed_for_want_of_local_account,
                "the generated script never fails for another reason: {outcome:?}\n{generated}"
            );
            if outcome.failed_for_want_of_local_account {
                failing = Some((login, outcome));
                break;
            }
        }
        prop_assert_eq!(
            !analysis.conflicts.is_empty(),
            failing.is_some(),
            "rule: {:?}\nfailing login: {:?}\nscript:\n{}",
            analysis.conflicts,
            failing,
            generated
        );
    }
}
