//! The session cookie: a random 128-bit id (base64url) that CSRF tokens are bound to.
//! Stateless on the server: nothing is stored under it, so every server of a cluster
//! accepts it. `HttpOnly` (scripts cannot read it), `SameSite=Lax` (not sent on cross-site
//! POSTs), `Secure` when the page was served over HTTPS, `Path=/`.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const COOKIE_NAME: &str = "ironfence_session";

/// The session id the request carries, if well-formed.
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 22 && URL_SAFE_NO_PAD.decode(v).is_ok_and(|b| b.len() == 16))
}

/// A new random session id.
pub fn new_id() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a session id: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// The `Set-Cookie` value for `id`.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_round_trip_and_attributes() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 22);
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={id}; c=d")).unwrap(),
        );
        assert_eq!(from_headers(&h).as_deref(), Some(id.as_str()));
        h.insert(COOKIE, HeaderValue::from_static("ironfence_session=short"));
        assert_eq!(from_headers(&h), None);
        assert_eq!(
            set_cookie(&id, true),
            format!("ironfence_session={id}; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        assert!(!set_cookie(&id, false).contains("Secure"));
    }
}
