//! Step 1 of the IdentityProvider pass for its client Secret: the consent label, the key, and the
//! version last pushed (the secret is pushed whenever that version was never pushed).

use super::*;

/// The Secret holding the IdP's OAuth client secret, if its type has one.
pub(super) fn client_secret_ref(
    idp: &IdentityProvider,
) -> Option<&crate::api::common::SecretKeyRef> {
    idp.spec.client_secret_ref()
}

/// The IdP's client secret and the Secret's resourceVersion, or the outcome that reports it missing.
pub(super) async fn read_client_secret(
    ctx: &Context,
    ns: &str,
    r: &crate::api::common::SecretKeyRef,
) -> Result<Result<(Secret, Option<String>), Outcome>, Error> {
    let found = read_secret(&ctx.client, ns, &r.name).await?;
    // Consent before the value is used: it is pushed to the server the backend points at.
    if found
        .as_ref()
        .is_some_and(|s| !consented(s, USE_IDP_CLIENT_SECRET))
    {
        let msg = consent_message(&r.name, "clientSecretRef", USE_IDP_CLIENT_SECRET);
        return Ok(Err(Outcome::stalled("SecretNotConsented", msg)));
    }
    match found.as_ref().and_then(|s| secret_value(s, &r.key)) {
        Some(v) => Ok(Ok((
            Secret::new(v),
            found.and_then(|s| s.resource_version()),
        ))),
        None => {
            let what = if found.is_some() {
                format!("has no key {}", r.key)
            } else {
                "not found".into()
            };
            let msg = format!("Secret {} (clientSecretRef) {what}: create it", r.name);
            Ok(Err(Outcome::stalled("SecretNotFound", msg)))
        }
    }
}

/// Validate and resolve credentials. The Secret's value is needed only to send it: when the server
/// already has the version in the metadata cache (same resourceVersion, same content), the
/// authenticator is diffed without it and the Secret is read only if something must be written
/// after all.
pub(super) async fn credentials<'a>(
    ctx: &Context,
    idp: &'a IdentityProvider,
    ns: &str,
    seen: &mut Observed,
) -> managed::Step<Credentials<'a>> {
    let spec = &idp.spec;
    // What CEL cannot have checked on an object stored before its rules (see display_name_problem).
    if let Some(problem) = crate::api::common::display_name_problem(&spec.display_name) {
        return Ok(Err(Outcome::stalled("InvalidSpec", problem)));
    }
    if spec.provider_type().is_none() {
        let msg = "set exactly one of google, github, facebook, apple, oidc or saml";
        return Ok(Err(Outcome::stalled("InvalidSpec", msg)));
    }
    let secret_ref = client_secret_ref(idp);
    // This process's own last writes count even when the cache still shows an older object.
    let uid = idp.uid().unwrap_or_default();
    let annotated = idp.annotations().get(SECRET_VERSION).cloned();
    let pushed = ctx.memo.pushed_version(&uid, annotated);
    let cached_version = secret_ref.and_then(|r| ctx.registry.secret_version(ns, &r.name));
    let known = ctx.memo.owned_id(&uid, idp.recorded_id()).is_some()
        && cached_version.is_some()
        && cached_version == pushed;
    let mut client_secret = None;
    match secret_ref {
        Some(r) if !known => {
            let (value, version) = step!(inner: read_client_secret(ctx, ns, r).await);
            client_secret = Some(value);
            seen.secret_version = version;
        }
        Some(_) => seen.secret_version = cached_version,
        None => {}
    }
    let Some(desired) = desired_authenticator(spec, client_secret.as_ref()) else {
        let msg = "the identity provider type is incomplete";
        return Ok(Err(Outcome::stalled("InvalidSpec", msg)));
    };
    Ok(Ok(Credentials {
        secret_ref,
        pushed,
        known,
        desired,
    }))
}
