//! The `certificate` of an IdP as the server handles it: what a POST stores, and the PATCH paths
//! `/certificate/jwksUri`, `/certificate/samlMetadataUri` and `/certificate/certificates/N` (each
//! function cites the server code it follows).

use super::{invalid, value_str};
use crate::reply::EmuError;
use crate::state::StoredIdp;
use identity_client::wire::{self, Patch, PatchOperation};

/// The `certificate` of a POST as ServerIdpManagementService.createIDP stores it (c2446d9,
/// ~L2193-2248): only the first non-blank of JWKS URI, SAML metadata URI and certificates is kept;
/// a certificate that starts with `-----BEGIN CERTIFICATE-----` is taken as PEM, any other is
/// base64-decoded (400 `IDP-60036` "Invalid IDP certificate format." when it is not base64). The
/// server stores base64 of the PEMs and answers each `CertificateInfo.certValue`, the base64 of
/// one PEM (its patch handling base64-decodes them), so the emulator keeps them that way.
pub(super) fn post_certificate(
    c: Option<wire::Certificate>,
) -> Result<Option<wire::Certificate>, EmuError> {
    let Some(c) = c else { return Ok(None) };
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
    if !blank(&c.jwks_uri) {
        return Ok(Some(wire::Certificate {
            jwks_uri: c.jwks_uri,
            ..Default::default()
        }));
    }
    if !blank(&c.saml_metadata_uri) {
        return Ok(Some(wire::Certificate {
            saml_metadata_uri: c.saml_metadata_uri,
            ..Default::default()
        }));
    }
    let Some(list) = c.certificates else {
        return Ok(None);
    };
    let stored = list
        .iter()
        .map(|v| to_pem(v).map(|pem| stored_certificate(&pem)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!stored.is_empty()).then(|| wire::Certificate {
        certificates: Some(stored),
        ..Default::default()
    }))
}

/// A certificate value of a request as PEM: kept when it starts with the PEM header (the server's
/// `IdentityUtil.PEM_BEGIN_CERTFICATE` check), base64-decoded otherwise.
fn to_pem(v: &str) -> Result<String, EmuError> {
    use base64::Engine as _;
    if v.starts_with("-----BEGIN CERTIFICATE-----") {
        return Ok(v.to_string());
    }
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            EmuError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "IDP-60036",
                "Invalid IDP certificate format.",
                "One or more IDP certificate formats are invalid",
            )
        })
}

/// How the server keeps one certificate (and returns it): base64 of its PEM.
fn stored_certificate(pem: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(pem.trim())
}

/// The PEMs the IdP has, decoded from their stored form.
pub(super) fn stored_pems(idp: &StoredIdp) -> Vec<String> {
    idp.certificate
        .as_ref()
        .and_then(|c| c.certificates.as_ref())
        .map(|l| l.iter().map(|c| wire::decode_certificate(c)).collect())
        .unwrap_or_default()
}

/// The index of a `/certificate/certificates/N` path (the server's `CERTIFICATE_PATH_REGEX`,
/// `/certificate/certificates/[0-9]+`, with four path segments).
pub(super) fn certificate_index(path: &str) -> Option<usize> {
    let n = path.strip_prefix("/certificate/certificates/")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

fn update_failed(status: axum::http::StatusCode, description: &str) -> EmuError {
    EmuError::new(
        status,
        "IDP-65005",
        "Unable to update identity provider.",
        description,
    )
}

/// `/certificate/certificates/N` as ServerIdpManagementService.processPatchRequest treats it
/// (c2446d9, ~L3197-3300): the value is PEM or base64 of PEM (400 `IDP-60036` otherwise).
/// `REPLACE` needs an existing index (404 "Cannot replace certificate as it does not exist.") and a
/// value not already stored (409); `ADD` needs N to be the current count (400 "Invalid index in
/// 'path' attribute"), refuses a duplicate (409 "Cannot add certificate as it already exists.") and
/// drops the JWKS and SAML metadata URIs (alternatives of one "certificate type"); `REMOVE` needs an
/// existing index (404).
pub(super) fn patch_certificate_list(
    idp: &mut StoredIdp,
    p: &Patch,
    index: usize,
) -> Result<(), EmuError> {
    use axum::http::StatusCode;
    let mut pems = stored_pems(idp);
    let value = || -> Result<String, EmuError> {
        let v = value_str(p)?.ok_or_else(|| invalid("A certificate needs a value."))?;
        to_pem(&v).map(|v| v.trim().to_string())
    };
    match p.operation {
        PatchOperation::Replace => {
            if index >= pems.len() {
                return Err(update_failed(
                    StatusCode::NOT_FOUND,
                    "Cannot replace certificate as it does not exist.",
                ));
            }
            let v = value()?;
            if pems.contains(&v) {
                return Err(update_failed(
                    StatusCode::CONFLICT,
                    "Cannot replace certificate as this certificate already exists.",
                ));
            }
            pems[index] = v;
        }
        PatchOperation::Add => {
            if index != pems.len() {
                return Err(EmuError::new(
                    StatusCode::BAD_REQUEST,
                    "IDP-60025",
                    "Invalid input.",
                    "Invalid index in 'path' attribute",
                ));
            }
            let v = value()?;
            if pems.contains(&v) {
                return Err(update_failed(
                    StatusCode::CONFLICT,
                    "Cannot add certificate as it already exists.",
                ));
            }
            pems.push(v);
        }
        PatchOperation::Remove => {
            if index >= pems.len() {
                return Err(update_failed(
                    StatusCode::NOT_FOUND,
                    "Cannot replace certificate as it does not exist.",
                ));
            }
            pems.remove(index);
        }
    }
    // After an ADD only certificates remain; REPLACE and REMOVE leave no URI either, since the
    // server never holds one next to certificates.
    idp.certificate = (!pems.is_empty()).then(|| wire::Certificate {
        certificates: Some(pems.iter().map(|p| stored_certificate(p)).collect()),
        ..Default::default()
    });
    Ok(())
}

/// `/certificate/jwksUri` and `/certificate/samlMetadataUri` as ServerIdpManagementService's patch
/// handling treats them (c2446d9, ~L3260, ~L3313-3360, ~L3405; `patchIdpProperties` ~L3458):
/// `REPLACE` sets an existing one and is a 404 (`IDP-65005`, "Cannot replace jwksUri as it does not
/// exist.") when there is none; `ADD` is a 400 when one exists, else stores it and drops the other
/// URI and the certificates (alternatives of one "certificate type"); `REMOVE` drops it, 404 when
/// there is none.
pub(super) fn patch_certificate_uri(idp: &mut StoredIdp, p: &Patch) -> Result<(), EmuError> {
    let jwks = p.path == "/certificate/jwksUri";
    let (prop, label) = if jwks {
        ("jwksUri", "JWKS URI")
    } else {
        ("samlMetadataUri", "SAML Metadata URI")
    };
    let not_there = |what: &str| {
        EmuError::not_found(
            "IDP-65005",
            "Unable to update identity provider.",
            format!("Cannot {what} {prop} as it does not exist."),
        )
    };
    let current = idp.certificate.as_ref().and_then(|c| {
        if jwks {
            c.jwks_uri.clone()
        } else {
            c.saml_metadata_uri.clone()
        }
    });
    let set = |c: &mut wire::Certificate, v: Option<String>| {
        if jwks {
            c.jwks_uri = v;
        } else {
            c.saml_metadata_uri = v;
        }
    };
    let needs = || invalid(format!("{prop} needs a value."));
    match p.operation {
        PatchOperation::Replace => {
            current.ok_or_else(|| not_there("replace"))?;
            let value = value_str(p)?.ok_or_else(needs)?;
            if let Some(c) = idp.certificate.as_mut() {
                set(c, Some(value));
            }
        }
        PatchOperation::Add => {
            if current.is_some() {
                return Err(update_failed(
                    axum::http::StatusCode::BAD_REQUEST,
                    &format!("Cannot add {label} as it already exists"),
                ));
            }
            let value = value_str(p)?.ok_or_else(needs)?;
            let mut c = wire::Certificate::default();
            set(&mut c, Some(value));
            idp.certificate = Some(c);
        }
        PatchOperation::Remove => {
            current.ok_or_else(|| not_there("remove"))?;
            if let Some(c) = idp.certificate.as_mut() {
                set(c, None);
            }
            if idp.certificate.as_ref() == Some(&wire::Certificate::default()) {
                idp.certificate = None;
            }
        }
    }
    Ok(())
}
