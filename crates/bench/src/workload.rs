//! The objects a bench run creates: N IdentityProviders (JIT on) and M Applications, each offering
//! 1–3 of the IdPs in its first step and, for ~80 % of them, a TOTP step after it. Deterministic for
//! a seed, so that two runs of the same size create the same graph.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Name of the IdentityBackend every object uses.
pub const BACKEND: &str = "bench";
/// Name of the Secret holding the (fake) OAuth client secret every IdP references.
pub const IDP_SECRET: &str = "bench-idp-oauth";
/// Share of applications with a TOTP step after the IdP step.
pub const TOTP_SHARE: f64 = 0.8;

/// One application's place in the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppShape {
    /// Indexes into the IdP list, distinct, 1..=3 of them.
    pub idps: Vec<usize>,
    /// Whether a TOTP step follows the IdP step (so turning JIT off on one of its IdPs conflicts).
    pub totp: bool,
}

/// The generated graph.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Number of IdPs (the hub included).
    pub idps: usize,
    /// One entry per application.
    pub apps: Vec<AppShape>,
    /// The hub IdP (the last one), when the graph has one: every one of its dependents has a TOTP
    /// step after it, so that a JIT toggle on it must flag all of them.
    pub hub: Option<usize>,
}

/// Kubernetes name of IdP `i`.
pub fn idp_name(i: usize) -> String {
    format!("idp-{i:05}")
}

/// Kubernetes name of application `i`.
pub fn app_name(i: usize) -> String {
    format!("app-{i:05}")
}

impl Workload {
    /// A graph of `idps` IdPs (at least 1) and `apps` applications.
    pub fn generate(idps: usize, apps: usize, seed: u64) -> Self {
        assert!(idps > 0, "at least one IdP");
        let mut rng = StdRng::seed_from_u64(seed);
        let apps = (0..apps)
            .map(|_| {
                let k = rng.random_range(1..=3usize).min(idps);
                let mut chosen = rand::seq::index::sample(&mut rng, idps, k).into_vec();
                chosen.sort_unstable();
                AppShape {
                    idps: chosen,
                    totp: rng.random_bool(TOTP_SHARE),
                }
            })
            .collect();
        Self {
            idps,
            apps,
            hub: None,
        }
    }

    /// The same graph plus one hub IdP offered (with a TOTP step after it) by the first
    /// `dependents` applications (all of them if there are fewer). The random part does not change,
    /// so a run with a hub differs from one without only by the hub's edges.
    pub fn with_hub(idps: usize, apps: usize, dependents: usize, seed: u64) -> Self {
        let mut w = Self::generate(idps, apps, seed);
        let hub = w.idps;
        w.idps += 1;
        for app in w.apps.iter_mut().take(dependents) {
            app.idps.push(hub);
            app.totp = true;
        }
        w.hub = Some(hub);
        w
    }

    /// Applications offering IdP `idp`.
    pub fn dependents(&self, idp: usize) -> Vec<usize> {
        (0..self.apps.len())
            .filter(|&a| self.apps[a].idps.contains(&idp))
            .collect()
    }

    /// The IdP with the most dependents (lowest index on a tie), its dependents, and those of them
    /// that conflict once its JIT is off (the ones with a TOTP step).
    pub fn most_depended_on(&self) -> (usize, Vec<usize>, Vec<usize>) {
        if let Some(hub) = self.hub {
            let deps = self.dependents(hub);
            return (hub, deps.clone(), deps);
        }
        let mut counts = vec![0usize; self.idps];
        for app in &self.apps {
            for &i in &app.idps {
                counts[i] += 1;
            }
        }
        let idp = (0..self.idps)
            .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        let deps = self.dependents(idp);
        let conflicting = deps
            .iter()
            .copied()
            .filter(|&a| self.apps[a].totp)
            .collect();
        (idp, deps, conflicting)
    }

    /// IdentityProvider `i` as an object to server-side apply.
    pub fn idp_object(&self, i: usize) -> Value {
        json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "IdentityProvider",
            "metadata": {"name": idp_name(i)},
            "spec": {
                "backendRef": {"name": BACKEND},
                "displayName": format!("Bench IdP {i}"),
                "google": {
                    "clientID": format!("bench-{i}.apps.example"),
                    "clientSecretRef": {"name": IDP_SECRET, "key": "client-secret"}
                },
                "jit": {"enabled": true, "scheme": "ProvisionSilently"}
            }
        })
    }

    /// Application `i` as an object to server-side apply.
    pub fn app_object(&self, i: usize) -> Value {
        let shape = &self.apps[i];
        let mut first = vec![json!({"authenticator": "BasicAuthenticator"})];
        first.extend(
            shape
                .idps
                .iter()
                .map(|&p| json!({"identityProviderRef": {"name": idp_name(p)}})),
        );
        let mut steps = vec![json!({"options": first})];
        if shape.totp {
            steps.push(json!({"options": [{"authenticator": "totp"}]}));
        }
        json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": app_name(i)},
            "spec": {
                "backendRef": {"name": BACKEND},
                "displayName": format!("Bench App {i}"),
                "oidc": {
                    "grantTypes": ["authorization_code", "refresh_token"],
                    "callbackURLs": [format!("https://app-{i}.bench.example/callback")]
                },
                "credentialsSecret": {"name": format!("{}-oidc", app_name(i))},
                "loginFlow": {"steps": steps}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_has_the_promised_shape() {
        let w = Workload::generate(50, 1000, 7);
        assert_eq!(w.apps.len(), 1000);
        for app in &w.apps {
            assert!((1..=3).contains(&app.idps.len()));
            let mut d = app.idps.clone();
            d.dedup();
            assert_eq!(d.len(), app.idps.len(), "distinct IdPs");
            assert!(app.idps.iter().all(|&i| i < 50));
        }
        let totp = w.apps.iter().filter(|a| a.totp).count();
        assert!((700..=900).contains(&totp), "{totp} of 1000 with TOTP");
        let (idp, deps, conflicting) = w.most_depended_on();
        assert!(idp < 50);
        assert!(!deps.is_empty() && conflicting.len() <= deps.len());
        assert!((0..50).all(|i| w.dependents(i).len() <= deps.len()));
    }

    #[test]
    fn hub_is_offered_by_its_dependents_and_is_the_toggled_one() {
        let plain = Workload::generate(5, 30, 2);
        let w = Workload::with_hub(5, 30, 12, 2);
        assert_eq!((w.idps, w.hub), (6, Some(5)));
        assert_eq!(w.dependents(5), (0..12).collect::<Vec<_>>());
        for (a, (with, without)) in w.apps.iter().zip(&plain.apps).enumerate() {
            if a < 12 {
                assert!(with.totp, "a hub dependent must conflict once JIT is off");
                assert_eq!(with.idps[..with.idps.len() - 1], without.idps[..]);
            } else {
                assert_eq!(with, without);
            }
        }
        let (idp, deps, conflicting) = w.most_depended_on();
        assert_eq!(idp, 5);
        assert_eq!(deps.len(), 12);
        assert_eq!(conflicting, deps);
        assert_eq!(w.idp_object(5)["metadata"]["name"], "idp-00005");
        // More dependents than applications: every application depends on the hub.
        assert_eq!(Workload::with_hub(2, 4, 10, 1).dependents(2).len(), 4);
    }

    #[test]
    fn same_seed_same_graph_and_small_idp_counts_work() {
        let a = Workload::generate(3, 20, 1);
        let b = Workload::generate(3, 20, 1);
        assert_eq!(a.apps, b.apps);
        let one = Workload::generate(1, 5, 1);
        assert!(one.apps.iter().all(|a| a.idps == vec![0]));
    }

    #[test]
    fn objects_reference_what_exists() {
        let w = Workload::generate(4, 10, 3);
        let app = w.app_object(0);
        let steps = app["spec"]["loginFlow"]["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), if w.apps[0].totp { 2 } else { 1 });
        let refs = steps[0]["options"].as_array().expect("options").len() - 1;
        assert_eq!(refs, w.apps[0].idps.len());
        assert_eq!(w.idp_object(2)["metadata"]["name"], "idp-00002");
        assert_eq!(w.idp_object(2)["spec"]["jit"]["enabled"], true);
    }
}
