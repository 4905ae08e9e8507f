//! Unit tests of the IdP handlers (`idp.rs`).

use super::certificate::stored_pems;
use super::*;

#[test]
fn jit_put_fills_model_defaults_and_requires_is_enabled() {
    assert!(normalize_jit(JustInTimeProvisioning::default()).is_err());
    let j = normalize_jit(JustInTimeProvisioning {
        is_enabled: Some(true),
        ..Default::default()
    })
    .expect("ok");
    assert_eq!(j.scheme, Some(JitScheme::ProvisionSilently));
    assert_eq!(j.userstore.as_deref(), Some("PRIMARY"));
    assert_eq!(
        j.attribute_sync_method,
        Some(AttributeSyncMethod::OverrideAll)
    );
    assert_eq!(
        j.idp_group_sync_method,
        Some(IdpGroupSyncMethod::MergeWithExisting)
    );
    assert_eq!(j.associate_local_user, Some(false));
}

#[test]
fn certificates_follow_the_servers_post_and_patch_rules() {
    use axum::http::StatusCode;
    use base64::Engine as _;
    let a = "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----";
    let b = "-----BEGIN CERTIFICATE-----\nQg==\n-----END CERTIFICATE-----";
    let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(p);
    let op = |operation, path: &str, value: Option<&str>| Patch {
        operation,
        path: path.into(),
        value: value.map(|v| serde_json::Value::String(v.into())),
    };
    // POST keeps the first of JWKS URI, metadata URI, certificates; PEM or base64 PEM in,
    // base64 stored.
    let both = post_certificate(Some(wire::Certificate {
        certificates: Some(vec![a.into()]),
        jwks_uri: None,
        saml_metadata_uri: Some("https://m.example".into()),
    }))
    .expect("post");
    assert_eq!(
        both.and_then(|c| c.saml_metadata_uri).as_deref(),
        Some("https://m.example")
    );
    let pems = post_certificate(Some(wire::Certificate {
        certificates: Some(vec![a.into(), b64(b)]),
        ..Default::default()
    }))
    .expect("post")
    .and_then(|c| c.certificates);
    assert_eq!(pems, Some(vec![b64(a), b64(b)]));
    let bad = post_certificate(Some(wire::Certificate {
        certificates: Some(vec!["not base64!".into()]),
        ..Default::default()
    }));
    assert_eq!(bad.err().map(|e| e.status), Some(StatusCode::BAD_REQUEST));

    let mut idp = StoredIdp {
        certificate: Some(wire::Certificate {
            saml_metadata_uri: Some("https://m.example".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = |r: Result<(), EmuError>| r.err().map(|e| e.status);
    // (case, operation, index, value, expected error status)
    let steps = [
        (
            "ADD past the end",
            PatchOperation::Add,
            1,
            Some(a),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "ADD at the count drops the URI",
            PatchOperation::Add,
            0,
            Some(a),
            None,
        ),
        (
            "ADD of a duplicate",
            PatchOperation::Add,
            1,
            Some(a),
            Some(StatusCode::CONFLICT),
        ),
        (
            "ADD of base64 PEM",
            PatchOperation::Add,
            1,
            Some(&b64(b)),
            None,
        ),
        (
            "REPLACE with one stored",
            PatchOperation::Replace,
            0,
            Some(b),
            Some(StatusCode::CONFLICT),
        ),
        (
            "REPLACE missing",
            PatchOperation::Replace,
            5,
            Some(a),
            Some(StatusCode::NOT_FOUND),
        ),
        (
            "REMOVE missing",
            PatchOperation::Remove,
            2,
            None,
            Some(StatusCode::NOT_FOUND),
        ),
        ("REMOVE first", PatchOperation::Remove, 0, None, None),
    ];
    for (case, operation, i, value, want) in steps {
        let path = format!("/certificate/certificates/{i}");
        assert_eq!(certificate_index(&path), Some(i), "{case}");
        let got = status(patch_certificate_list(
            &mut idp,
            &op(operation, &path, value),
            i,
        ));
        assert_eq!(got, want, "{case}");
    }
    assert_eq!(stored_pems(&idp), vec![b.to_string()]);
    assert_eq!(
        idp.certificate
            .as_ref()
            .and_then(|c| c.saml_metadata_uri.clone()),
        None
    );
    // A URI: REPLACE of a missing one is a 404; ADD drops the certificates.
    let m = "/certificate/samlMetadataUri";
    assert_eq!(
        status(patch_certificate_uri(
            &mut idp,
            &op(PatchOperation::Replace, m, Some("https://x.example"))
        )),
        Some(StatusCode::NOT_FOUND)
    );
    assert_eq!(
        status(patch_certificate_uri(
            &mut idp,
            &op(PatchOperation::Add, m, Some("https://x.example"))
        )),
        None
    );
    assert_eq!(
        idp.certificate,
        Some(wire::Certificate {
            saml_metadata_uri: Some("https://x.example".into()),
            ..Default::default()
        })
    );
    assert_eq!(certificate_index("/certificate/certificates/"), None);
    assert_eq!(certificate_index("/certificate/certificates/x"), None);
}
