//! Who is calling: bearer tokens (API) and the session cookie (pages).

use super::AdminState;
use super::api::Endpoint;
use super::error::ApiError;
use crate::web::Peer;
use axum::http::HeaderMap;
use ironfence_admin::Role;
use std::net::IpAddr;

/// An authenticated admin, inserted as a request extension by the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    pub role: Role,
    /// The session the token or cookie belongs to (names it in the admin audit log).
    pub session: String,
    /// Where the request came from (behind haproxy: the forwarded client).
    pub client: IpAddr,
}

pub fn endpoints() -> Vec<Endpoint> {
    Vec::new()
}

/// The caller of a request with `headers`, received from `peer` (absent in router tests), or
/// 401.
pub async fn authenticate(
    _state: &AdminState,
    _headers: &HeaderMap,
    _peer: Option<Peer>,
) -> Result<Principal, ApiError> {
    Err(ApiError::unauthorized("log in first: POST /api/v1/login"))
}
