//! The configuration loader parses files a peer pushed (cluster sync): arbitrary bytes split
//! into pf.conf, switches.conf, roles.conf and cluster.conf must never panic `checkup` or
//! `Config::load`, and every INI document must round-trip byte for byte.
#![no_main]

use ironfence_config::{Config, Document, checkup_as};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const FILES: [&str; 4] = ["pf.conf", "switches.conf", "roles.conf", "cluster.conf"];

/// One conf directory per fuzzing process, rewritten at every input.
fn conf_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir()
            .join(format!("ironfence-fuzz-config-{}", std::process::id()))
            .join("conf");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A NUL separates the files (it is not valid in any of them).
    let parts: Vec<&str> = text.splitn(FILES.len(), '\0').collect();
    for part in &parts {
        if let Ok(doc) = Document::parse("fuzz.conf", part) {
            assert_eq!(doc.to_string(), *part, "lossless round trip");
        }
        let (doc, _errors) = Document::parse_lenient("fuzz.conf", part);
        let _ = doc.to_string();
    }
    let dir = conf_dir();
    for (i, name) in FILES.iter().enumerate() {
        let path = dir.join(name);
        match parts.get(i) {
            Some(content) => std::fs::write(&path, content).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let diags = checkup_as(dir, Some("pf1.example.com"));
    let _ = diags.to_string();
    let loaded = Config::load_as(dir, Some("pf1.example.com"));
    // load refuses exactly what checkup calls an error.
    assert_eq!(loaded.is_err(), diags.has_errors(), "{diags}");
});
