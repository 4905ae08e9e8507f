//! Step 5 of the Application pass: the credentials Secret (client id and secret of the OIDC
//! application), written only when this Application created it ([`managed::plan_credentials`]).

use super::*;

/// Why `name` cannot be a Secret's name (a DNS-1123 subdomain: at most 253 characters of
/// lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a
/// letter or digit), or `None` when it can. Pure.
pub fn invalid_secret_name(name: &str) -> Option<String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok)).then(|| {
        format!(
            "credentialsSecret name {name:?} is not a valid Secret name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters): choose another"
        )
    })
}

/// Writes the credentials to the Secret if this Application created it (or creates it); returns
/// why not when the Secret is someone else's. `announce`: a `CredentialsWritten` Event (not when
/// the application was created in the same pass).
pub(super) async fn write_credentials(
    ctx: &Context,
    app: &Application,
    name: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    announce: bool,
) -> Result<Option<String>, Error> {
    let ns = app.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut data = BTreeMap::new();
    if let Some(v) = client_id {
        data.insert("client-id".to_string(), ByteString(v.as_bytes().to_vec()));
    }
    if let Some(v) = client_secret {
        data.insert(
            "client-secret".to_string(),
            ByteString(v.as_bytes().to_vec()),
        );
    }
    let uid = app.uid().unwrap_or_default();
    let creds = (client_id, client_secret);
    if ctx
        .registry
        .secret_version(&ns, name)
        .is_some_and(|v| ctx.memo.credentials_current(&uid, &v, &creds))
    {
        return Ok(None);
    }
    // A Secret the metadata cache does not know is created without a read first (a new
    // Application's); a conflict then means it exists after all, and it is read and planned.
    let mut read = ctx.registry.secret_version(&ns, name).is_some();
    loop {
        let existing = if read { api.get_opt(name).await? } else { None };
        let plan = managed::plan_credentials(
            existing
                .as_ref()
                .map(|s| (&s.metadata, s.data.as_ref() == Some(&data))),
            &app.uid().unwrap_or_default(),
            name,
        );
        match plan {
            SecretPlan::Unchanged => {
                let version = existing.and_then(|s| s.resource_version());
                ctx.memo.credentials_written(&uid, version, &creds);
                return Ok(None);
            }
            SecretPlan::Foreign(why) => {
                ctx.memo.credentials_forget(&uid);
                return Ok(Some(why));
            }
            SecretPlan::Create | SecretPlan::Update => {}
        }
        let owner = app
            .controller_owner_ref(&())
            .into_iter()
            .collect::<Vec<_>>();
        let secret = KubeSecret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                owner_references: Some(owner),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data.clone()),
            ..Default::default()
        };
        let mut body = serde_json::to_value(&secret).map_err(|e| Error::Internal(e.to_string()))?;
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Secret");
        // Create only when absent: a Secret made by someone else between the read and this write must
        // not be taken over by an apply.
        if plan == SecretPlan::Create {
            let created: KubeSecret =
                serde_json::from_value(body).map_err(|e| Error::Internal(e.to_string()))?;
            match api.create(&kube::api::PostParams { field_manager: Some(MANAGER.into()), ..Default::default() }, &created).await {
                Ok(s) => ctx.memo.credentials_written(&uid, s.resource_version(), &creds),
                // Not in the metadata cache, so not read first: it exists after all, read it.
                Err(kube::Error::Api(e)) if e.code == 409 && !read => {
                    read = true;
                    continue;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => return Ok(Some(format!("Secret {name} (credentialsSecret) appeared before the operator could create it; it was not written"))),
                Err(e) => return Err(e.into()),
            }
        } else {
            let written = api
                .patch(
                    name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await?;
            ctx.memo
                .credentials_written(&uid, written.resource_version(), &creds);
        }
        // With the application just created, its Created Event says it: no second Event.
        if announce {
            publish(
                ctx,
                app,
                EventType::Normal,
                "CredentialsWritten",
                "WriteSecret",
                format!("wrote client-id and client-secret to Secret {name}"),
            )
            .await;
        }
        return Ok(None);
    }
}
