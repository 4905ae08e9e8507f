//! Leader election on a coordination.k8s.io Lease, so that replicas > 1 never reconcile at once.
//! The holder renews every few seconds; a replica that cannot renew exits, and Kubernetes restarts it
//! as a follower (simpler and safer than stopping controllers in place).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

const LEASE_SECONDS: i32 = 15;
const RENEW_EVERY: Duration = Duration::from_secs(5);

fn identity() -> String {
    std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("identity-operator-{}", uuid::Uuid::new_v4()))
}

fn expired(spec: &LeaseSpec, now: jiff::Timestamp) -> bool {
    let Some(renew) = spec.renew_time.as_ref() else {
        return true;
    };
    let secs = spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS);
    renew.0 + jiff::SignedDuration::from_secs(i64::from(secs)) < now
}

/// Waits until this process holds the Lease, then keeps renewing it in the background.
pub async fn acquire(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let me = identity();
    tracing::info!(lease = name, namespace = ns, identity = %me, "waiting for leadership");
    loop {
        if try_take(&api, name, &me).await? {
            break;
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
    tracing::info!(identity = %me, "became leader");
    let api2 = api.clone();
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match try_take(&api2, &name, &me).await {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    tracing::error!("lost leadership; exiting so a follower can take over");
                    std::process::exit(1);
                }
            }
        }
    });
    Ok(())
}

/// Takes or renews the Lease; `false` when another live holder has it. Uses the Lease's
/// resourceVersion, so two replicas never both win.
async fn try_take(api: &Api<Lease>, name: &str, me: &str) -> anyhow::Result<bool> {
    let now = jiff::Timestamp::now();
    match api.get_opt(name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.into()),
                    lease_duration_seconds: Some(LEASE_SECONDS),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    ..Default::default()
                }),
            };
            Ok(api.create(&PostParams::default(), &lease).await.is_ok())
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let mine = spec.holder_identity.as_deref() == Some(me);
            if !mine && !expired(&spec, now) {
                return Ok(false);
            }
            let mut new = spec;
            if !mine {
                new.acquire_time = Some(MicroTime(now));
                new.lease_transitions = Some(new.lease_transitions.unwrap_or(0) + 1);
            }
            new.holder_identity = Some(me.into());
            new.lease_duration_seconds = Some(LEASE_SECONDS);
            new.renew_time = Some(MicroTime(now));
            lease.spec = Some(new);
            Ok(api
                .replace(name, &PostParams::default(), &lease)
                .await
                .is_ok())
        }
    }
}
