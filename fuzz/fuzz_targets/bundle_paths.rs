//! The receiver's file-path rules on arbitrary input: `validate_path`, `ReceivePolicy::check`
//! and `normalize_mode` (a pushed bundle names any path and mode it likes).
//!
//! Invariants: an accepted path is relative, has no empty, `.` or `..` component and no
//! reserved name, stays inside the installation root lexically, is never inside the state
//! directory nor `conf/cluster-files.txt`, and is either `conf/*.conf`, under `conf/ssl/`, or
//! exactly one of the receiver's own extra files. A normalised mode never has an execute bit
//! or group/other write, and never adds a bit.
#![no_main]

use ironfence_cluster::bundle::{
    NEVER_SYNCED, ReceivePolicy, is_default_synced, is_reserved_name, normalize_mode,
    validate_path,
};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path, PathBuf};

const ROOT: &str = "/nonexistent-ironfence-fuzz/etc";

fn lexically_inside(root: &Path, rel: &str) -> bool {
    let mut depth: i64 = 0;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    root.join(rel).starts_with(root)
}

/// `p` with `.` and `..` resolved lexically, relative to `root` if inside it.
fn rel_to_root(root: &Path, p: &Path) -> Option<String> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    let rel = out.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Some(parts.join("/"))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(path), Ok(mode), Ok(state), Ok(extras)) = (
        u.arbitrary::<String>(),
        u.arbitrary::<u32>(),
        u.arbitrary::<String>(),
        u.arbitrary::<Vec<String>>(),
    ) else {
        return;
    };
    let root = Path::new(ROOT);
    let state_dir = root.join(&state);
    let extra_paths: Vec<PathBuf> = extras.iter().map(|e| root.join(e)).collect();
    let policy = ReceivePolicy::new(root, &state_dir, &extra_paths);

    let m = normalize_mode(mode);
    assert_eq!(m & 0o133, 0, "{mode:o} → {m:o}");
    assert_eq!(m & !mode, 0, "{mode:o} → {m:o} adds bits");

    let valid = validate_path(&path).is_ok();
    if valid {
        assert!(!path.starts_with('/') && !path.is_empty());
        assert!(path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
        assert!(path.split('/').all(|c| !is_reserved_name(c)));
    }
    if policy.check(&path).is_ok() {
        assert!(valid, "{path:?} accepted but invalid");
        assert!(lexically_inside(root, &path), "{path:?} leaves the root");
        assert!(!NEVER_SYNCED.contains(&path.as_str()));
        // Never inside the state directory (when it is inside the root).
        if let Some(rel) = rel_to_root(root, &state_dir) {
            assert!(
                !(rel.is_empty() || path == rel || path.starts_with(&format!("{rel}/"))),
                "{path:?} is inside the state directory {rel:?}"
            );
        }
        let listed = extra_paths
            .iter()
            .any(|e| rel_to_root(root, e).as_deref() == Some(path.as_str()));
        assert!(
            is_default_synced(&path) || listed,
            "{path:?} accepted without a rule"
        );
    }
});
