//! JSON request bodies: size-limited by the router, and a body that does not fit its schema
//! is a 422 naming the field (`serde_path_to_error`'s path), or a 400 when it is not JSON.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body of type `T`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let v = v.split(';').next().unwrap_or("").trim();
                v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
            });
        if !json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request body as JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body could not be read: {e} (at most {MAX_BODY} bytes)"),
            )
        })?;
        parse(&bytes).map(Body)
    }
}

/// Decodes `bytes` as `T`, with the API's error rules.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::bad_request(format!(
                    "the request body is not valid JSON: {inner}"
                )))
            } else {
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                Err(ApiError::invalid(field, strip_position(&inner.to_string())))
            }
        }
    }
}

/// Query parameters of type `T` (a flat struct, `#[serde(deny_unknown_fields)]`): a value
/// that does not fit is a 422 naming the parameter, like a body field.
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// Decodes a query string as `T`, with the API's error rules (422 naming the parameter).
pub fn parse_query<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // Unknown parameters and missing ones are named in the message, not the path.
        let field = if path == "." {
            unknown_field_name(&inner).unwrap_or_else(|| "query".into())
        } else {
            path
        };
        ApiError::invalid(field, inner)
    })
}

/// `unknown field `colour`, expected …` → `colour`.
fn unknown_field_name(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// serde_json appends " at line 1 column 17" to data errors; the field name says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Update {
        role: Option<String>,
        notes: Option<String>,
        limits: Option<Limits>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let e = parse::<Update>(br#"{"role": 3}"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.errors[0].field, "role");
        let e = parse::<Update>(br#"{"limits": {"max": -1}}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "limits.max");
        let e = parse::<Update>(br#"{"colour": "red"}"#).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse::<Update>(b"{\"role\": ").unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(parse::<Update>(br#"{"role": "guest"}"#).is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Search {
        limit: Option<u32>,
        status: Option<String>,
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let q = parse_query::<Search>("limit=20&status=reg").unwrap();
        assert_eq!(q.limit, Some(20));
        let e = parse_query::<Search>("limit=many").unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        assert_eq!(e.errors[0].field, "limit");
        let e = parse_query::<Search>("colour=red").unwrap_err();
        assert_eq!(e.errors[0].field, "colour");
        assert!(parse_query::<Search>("").is_ok());
    }
}
