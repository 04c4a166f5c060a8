//! Decode arbitrary bytes as a configuration bundle (data a peer pushes). On success the bundle
//! must be self-consistent (header hash = records' hash, every path valid) and re-encode to
//! bytes that decode to the same value.
//!
//! Random bytes almost never carry a matching SHA-256, so the same input also drives the
//! accepting path: it is read as a list of (path, mode, content) records; when they form a valid
//! bundle, its encoding must decode to the same bundle, and that encoding with one byte changed
//! must be refused or decode to a self-consistent bundle.
#![no_main]

use ironfence_cluster::ConfigVersion;
use ironfence_cluster::bundle::{self, Bundle, BundleFile, validate_path};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let Ok((version, b)) = bundle::decode(bytes) else {
        return;
    };
    assert_eq!(version.hash, b.hash());
    for f in b.files() {
        assert!(validate_path(&f.path).is_ok(), "{:?}", f.path);
        assert!(!f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".."));
        assert!(f.mode <= 0o777);
    }
    let again = b.encode(&version);
    let (v2, b2) = bundle::decode(&again).expect("re-encoded bundle must decode");
    assert_eq!((v2, b2), (version, b));
}

fuzz_target!(|data: &[u8]| {
    check(data);

    let mut u = Unstructured::new(data);
    let Ok(records) = u.arbitrary::<Vec<(String, u16, Vec<u8>)>>() else {
        return;
    };
    let files = records
        .into_iter()
        .map(|(path, mode, content)| BundleFile {
            path,
            mode: u32::from(mode),
            content: content.into(),
        })
        .collect();
    let Ok(b) = Bundle::from_files(files) else {
        return;
    };
    let version = ConfigVersion {
        hash: b.hash(),
        changed_at: u.arbitrary().unwrap_or(0),
        changed_by: u.arbitrary().unwrap_or_default(),
    };
    let mut bytes = b.encode(&version);
    let (v2, b2) = bundle::decode(&bytes).expect("an encoded valid bundle must decode");
    assert_eq!((v2, b2), (version, b));
    if let (Ok(i), Ok(x)) = (u.arbitrary::<usize>(), u.arbitrary::<u8>()) {
        if !bytes.is_empty() && x != 0 {
            let i = i % bytes.len();
            bytes[i] ^= x;
            check(&bytes);
        }
    }
});
