//! Reading the synchronized files from disk.

use super::{
    Bundle, BundleError, BundleFile, MAX_FILE_SIZE, MAX_FILES, MAX_TOTAL_SIZE, NEVER_SYNCED,
    PORTAL_TEMPLATES, is_reserved_name, normalize_mode,
};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Collects every synchronized file (see the [module docs](super)): `conf/*.conf`,
/// `conf/ssl/**` and `extra_files` (the lines of `conf/cluster-files.txt`: absolute, or relative
/// to `install_root`; each must be inside `install_root`). `conf_dir` must be
/// `install_root/conf`. Symbolic links, special files, missing extra files and files over the
/// size limits are refused with an error naming the file. Modes are reported normalised
/// ([`normalize_mode`]): what a receiver writes, so that sender and receiver hash alike.
pub fn collect(
    conf_dir: &Path,
    install_root: &Path,
    extra_files: &[PathBuf],
) -> Result<Bundle, BundleError> {
    check_layout(conf_dir, install_root)?;
    let mut c = Collector::default();

    let entries = fs::read_dir(conf_dir).map_err(|e| BundleError::io("read", conf_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("read", conf_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue; // not UTF-8, so not `*.conf` as far as we can name it
        };
        if !name.ends_with(".conf") || is_reserved_name(name) {
            continue;
        }
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|e| BundleError::io("stat", &path, e))?;
        if meta.file_type().is_symlink() {
            return Err(BundleError::Symlink { path });
        }
        if meta.is_file() {
            c.add(&path, format!("conf/{name}"))?;
        }
    }

    let ssl = conf_dir.join("ssl");
    match fs::symlink_metadata(&ssl) {
        Ok(m) if m.file_type().is_symlink() => return Err(BundleError::Symlink { path: ssl }),
        Ok(m) if m.is_dir() => c.walk(&ssl, "conf/ssl")?,
        Ok(_) => return Err(BundleError::NotRegularFile { path: ssl }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BundleError::io("stat", ssl, e)),
    }

    // The captive portal's templates (conf/portal/templates/**), like conf/ssl.
    let portal = conf_dir.join("portal");
    match fs::symlink_metadata(&portal) {
        Ok(m) if m.file_type().is_symlink() => return Err(BundleError::Symlink { path: portal }),
        Ok(m) if m.is_dir() => {
            let templates = portal.join("templates");
            match fs::symlink_metadata(&templates) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(BundleError::Symlink { path: templates });
                }
                Ok(m) if m.is_dir() => c.walk(&templates, PORTAL_TEMPLATES)?,
                _ => {}
            }
        }
        _ => {}
    }

    for extra in extra_files {
        let rel = relative_to_root(extra, install_root)?;
        if c.files.iter().any(|f| f.path == rel) {
            continue; // already collected (e.g. `conf/pf.conf` listed explicitly)
        }
        // No component on the way may be a symbolic link (it could lead out of the root).
        let mut p = install_root.to_path_buf();
        let components: Vec<&str> = rel.split('/').collect();
        for (i, comp) in components.iter().enumerate() {
            p.push(comp);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(BundleError::Symlink { path: p });
                }
                Ok(m) if i + 1 < components.len() && !m.is_dir() => {
                    return Err(BundleError::ExtraMissing {
                        path: extra.clone(),
                    });
                }
                Ok(m) if i + 1 == components.len() && !m.is_file() => {
                    return Err(BundleError::NotRegularFile { path: p });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BundleError::ExtraMissing {
                        path: extra.clone(),
                    });
                }
                Err(e) => return Err(BundleError::io("stat", p, e)),
            }
        }
        c.add(&p, rel)?;
    }
    Bundle::from_files(c.files)
}

fn check_layout(conf_dir: &Path, install_root: &Path) -> Result<(), BundleError> {
    let layout_err = || BundleError::ConfDirLayout {
        conf_dir: conf_dir.to_path_buf(),
        install_root: install_root.to_path_buf(),
    };
    if conf_dir.strip_prefix(install_root).ok() == Some(Path::new("conf")) {
        return Ok(());
    }
    let canon = |p: &Path| fs::canonicalize(p).map_err(|e| BundleError::io("resolve", p, e));
    let (c, r) = (canon(conf_dir)?, canon(install_root)?);
    if c == r.join("conf") {
        Ok(())
    } else {
        Err(layout_err())
    }
}

/// `extra` as a `/`-separated path relative to `install_root`, refusing anything outside it.
fn relative_to_root(extra: &Path, install_root: &Path) -> Result<String, BundleError> {
    let outside = || BundleError::ExtraOutsideRoot {
        path: extra.to_path_buf(),
        install_root: install_root.to_path_buf(),
    };
    let rel = if extra.is_absolute() {
        match extra.strip_prefix(install_root) {
            Ok(r) => r.to_path_buf(),
            Err(_) => {
                // Same root spelled differently (e.g. through a symlinked /usr/local)?
                let root = fs::canonicalize(install_root)
                    .map_err(|e| BundleError::io("resolve", install_root, e))?;
                extra
                    .strip_prefix(&root)
                    .map_err(|_| outside())?
                    .to_path_buf()
            }
        }
    } else {
        extra.to_path_buf()
    };
    let mut parts = Vec::new();
    for comp in rel.components() {
        match comp {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| BundleError::NonUtf8Path {
                        path: extra.to_path_buf(),
                    })?
                    .to_string(),
            ),
            Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    if parts.is_empty() {
        return Err(outside());
    }
    let rel = parts.join("/");
    super::validate_path(&rel)?;
    Ok(rel)
}

#[derive(Default)]
struct Collector {
    files: Vec<BundleFile>,
    total: u64,
}

impl Collector {
    fn add(&mut self, path: &Path, rel: String) -> Result<(), BundleError> {
        if NEVER_SYNCED.contains(&rel.as_str()) {
            return Ok(());
        }
        if self.files.len() >= MAX_FILES {
            return Err(BundleError::TooManyFiles { max: MAX_FILES });
        }
        let file = fs::File::open(path).map_err(|e| BundleError::io("open", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| BundleError::io("stat", path, e))?;
        if !meta.is_file() {
            return Err(BundleError::NotRegularFile {
                path: path.to_path_buf(),
            });
        }
        let mut content = Vec::with_capacity(meta.len().min(MAX_FILE_SIZE) as usize);
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut content)
            .map_err(|e| BundleError::io("read", path, e))?;
        let size = content.len() as u64;
        if size > MAX_FILE_SIZE {
            return Err(BundleError::FileTooLarge {
                path: rel,
                size: meta.len().max(size),
                max: MAX_FILE_SIZE,
            });
        }
        self.total += size;
        if self.total > MAX_TOTAL_SIZE {
            return Err(BundleError::BundleTooLarge {
                max: MAX_TOTAL_SIZE,
            });
        }
        self.files.push(BundleFile {
            path: rel,
            mode: normalize_mode(meta.permissions().mode() & 0o777),
            content: content.into(),
        });
        Ok(())
    }

    /// Every regular file under `dir` (recursively); links and special files are refused.
    fn walk(&mut self, dir: &Path, rel: &str) -> Result<(), BundleError> {
        let entries = fs::read_dir(dir).map_err(|e| BundleError::io("read", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::io("read", dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| BundleError::NonUtf8Path { path: path.clone() })?;
            if is_reserved_name(name) {
                continue; // apply's own files are not configuration
            }
            let child = format!("{rel}/{name}");
            let meta =
                fs::symlink_metadata(&path).map_err(|e| BundleError::io("stat", &path, e))?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(BundleError::Symlink { path });
            } else if ft.is_dir() {
                self.walk(&path, &child)?;
            } else if ft.is_file() {
                self.add(&path, child)?;
            } else {
                return Err(BundleError::NotRegularFile { path });
            }
        }
        Ok(())
    }
}
