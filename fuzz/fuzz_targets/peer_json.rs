//! Decode arbitrary bytes as each JSON answer a peer's node-to-node API sends
//! (`ironfence_webservices::Client` decodes these from any member): server status,
//! configuration version, push report, database state, and the `{"error": …}` body. Never
//! panics (`ConfigVersion::short` included, which once sliced inside a character); what
//! decodes serialises back to JSON that decodes to the same value.
#![no_main]

use ironfence_cluster::types::DbState;
use ironfence_cluster::{ConfigVersion, PushReport, ServerStatus};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The client's error body (`{"error": "..."}`), same shape.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ErrorBody {
    error: String,
}

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let bytes = serde_json::to_vec(&v).expect("a decoded value encodes");
        let back: T = serde_json::from_slice(&bytes).expect("re-encoded JSON decodes");
        assert_eq!(back, v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ServerStatus>(data);
    round_trip::<ConfigVersion>(data);
    // What the CLI and the logs do with a peer's version.
    if let Ok(v) = serde_json::from_slice::<ConfigVersion>(data) {
        assert!(v.hash.starts_with(v.short()));
    }
    round_trip::<PushReport>(data);
    round_trip::<DbState>(data);
    round_trip::<ErrorBody>(data);
});
