//! What a handler needs from its request: the tenant, the origin, the query, the body, the
//! caller's scopes; and the server's pagination and link conventions built from them.

use std::collections::HashSet;

use super::reply::EmuError;
use identity_client::wire::Link;

/// What a handler needs from the request.
pub struct Ctx<'a> {
    /// Tenant domain from the path.
    pub tenant: &'a str,
    /// `scheme://host[:port]` as the client addressed us.
    pub origin: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Raw body.
    pub body: &'a [u8],
    /// Scopes of the caller's token.
    pub scopes: &'a HashSet<String>,
    /// Names compare case-insensitively (see [`Shared`]).
    pub ignore_name_case: bool,
}

impl Ctx<'_> {
    /// First value of a query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Server-relative path of an API resource, `/t/{tenant}/api/server/v1/{rest}`.
    pub fn api_path(&self, rest: &str) -> String {
        format!("/t/{}/api/server/v1/{rest}", self.tenant)
    }

    /// Absolute URL of an API resource (for `Location`).
    pub fn location(&self, rest: &str) -> String {
        format!("{}{}", self.origin, self.api_path(rest))
    }

    /// `limit` and `offset` query parameters; `code` is the area's invalid-pagination error code.
    pub fn page(&self, default_limit: usize, code: &str) -> Result<(usize, usize), EmuError> {
        let num = |key: &str, default: usize| -> Result<usize, EmuError> {
            match self.query(key) {
                None => Ok(default),
                Some(v) => v.parse::<usize>().map_err(|_| {
                    EmuError::bad_request(
                        code,
                        "Invalid pagination parameter.",
                        format!("{key} must be a non-negative integer."),
                    )
                }),
            }
        };
        Ok((num("limit", default_limit)?, num("offset", 0)?))
    }

    /// `next` / `previous` links as the server builds them (keeping the filter).
    pub fn links(&self, rest: &str, total: usize, limit: usize, offset: usize) -> Vec<Link> {
        let mut links = Vec::new();
        let filter = self
            .query("filter")
            .map(|f| {
                format!(
                    "&filter={}",
                    url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
                )
            })
            .unwrap_or_default();
        let href =
            |off: usize| format!("{}?offset={off}&limit={limit}{filter}", self.api_path(rest));
        if limit > 0 && offset + limit < total {
            links.push(Link {
                href: href(offset + limit),
                rel: "next".to_owned(),
            });
        }
        if offset > 0 {
            links.push(Link {
                href: href(offset.saturating_sub(limit)),
                rel: "previous".to_owned(),
            });
        }
        links
    }
}
