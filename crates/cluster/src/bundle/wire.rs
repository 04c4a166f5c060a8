//! The bundle's wire format (all integers big-endian):
//!
//! ```text
//!  offset  size  field
//!  0       8     magic "IFBUNDLE"
//!  8       2     format version (1)
//!  10      4     header length H (at most 64 KiB)
//!  14      H     header, JSON: {"version": ConfigVersion, "files": N, "extra_files": [path…]}
//!  then N records, sorted by path, strictly ascending:
//!          2     path length P (1..=MAX_PATH_LEN)
//!          P     path, UTF-8, relative to the installation root
//!          4     mode (permission bits, at most 0o777)
//!          8     content length C (at most MAX_FILE_SIZE, all C at most MAX_TOTAL_SIZE)
//!          C     content
//!  nothing after the last record
//! ```
//!
//! `extra_files` names exactly the records outside `conf/*.conf` and `conf/ssl/**` (the files of
//! `conf/cluster-files.txt`): a record outside `conf/` that the sender did not declare is refused.

use super::{
    Bundle, BundleError, BundleFile, MAX_FILE_SIZE, MAX_FILES, MAX_PATH_LEN, MAX_TOTAL_SIZE,
    is_default_synced, validate_path,
};
use crate::types::ConfigVersion;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// First 8 bytes of an encoded bundle.
pub const MAGIC: &[u8; 8] = b"IFBUNDLE";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const MAX_HEADER_LEN: usize = 64 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    version: ConfigVersion,
    files: u64,
    extra_files: Vec<String>,
}

pub(super) fn encode(bundle: &Bundle, version: &ConfigVersion) -> Vec<u8> {
    let header = Header {
        version: version.clone(),
        files: bundle.files.len() as u64,
        extra_files: bundle
            .extra_files()
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    // Serializing plain strings and integers cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(14 + header.len() + bundle.total_size() as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    for f in &bundle.files {
        out.extend_from_slice(&(f.path.len() as u16).to_be_bytes());
        out.extend_from_slice(f.path.as_bytes());
        out.extend_from_slice(&f.mode.to_be_bytes());
        out.extend_from_slice(&(f.content.len() as u64).to_be_bytes());
        out.extend_from_slice(&f.content);
    }
    out
}

struct Reader<'a> {
    bytes: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn malformed(&self, reason: impl Into<String>) -> BundleError {
        BundleError::Malformed {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    /// The next `n` bytes, sharing the input's buffer (no copy).
    fn take_shared(&mut self, n: usize, what: &str) -> Result<Bytes, BundleError> {
        let start = self.pos;
        self.take(n, what)?;
        Ok(self.bytes.slice(start..self.pos))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BundleError> {
        let remaining = self.bytes.len() - self.pos;
        if n > remaining {
            return Err(self.malformed(format!(
                "truncated {what}: needs {n} bytes, {remaining} left"
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], BundleError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// Decodes bytes received from a peer: checks the magic, format version, every length against
/// the remaining input and the limits, every path ([`validate_path`]; outside `conf/*.conf` and
/// `conf/ssl/**` only the declared extra files), modes, canonical order, and that the header's
/// hash equals the hash of the records. Never panics. Copies the file contents once; see
/// [`decode_owned`] to avoid that.
pub fn decode(bytes: &[u8]) -> Result<(ConfigVersion, Bundle), BundleError> {
    decode_owned(Bytes::copy_from_slice(bytes))
}

/// [`decode`] taking ownership of the received bytes: the files' contents are slices of that
/// one buffer (a 64 MiB push is held once in memory, not twice).
pub fn decode_owned(bytes: impl Into<Bytes>) -> Result<(ConfigVersion, Bundle), BundleError> {
    let bytes: Bytes = bytes.into();
    let bytes = &bytes;
    let mut r = Reader { bytes, pos: 0 };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BundleError::BadMagic);
    }
    r.pos = MAGIC.len();
    let format = u16::from_be_bytes(r.array("format version")?);
    if format != FORMAT_VERSION {
        return Err(BundleError::UnsupportedFormat {
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    let header_len = u32::from_be_bytes(r.array("header length")?) as usize;
    if header_len > MAX_HEADER_LEN {
        return Err(r.malformed(format!(
            "header of {header_len} bytes exceeds {MAX_HEADER_LEN}"
        )));
    }
    let header_start = r.pos;
    let header: Header = serde_json::from_slice(r.take(header_len, "header")?).map_err(|e| {
        BundleError::Malformed {
            offset: header_start,
            reason: format!("invalid header: {e}"),
        }
    })?;
    if header.files > MAX_FILES as u64 {
        return Err(BundleError::TooManyFiles { max: MAX_FILES });
    }
    let mut files: Vec<BundleFile> = Vec::with_capacity((header.files as usize).min(256));
    let mut total: u64 = 0;
    for _ in 0..header.files {
        let record_start = r.pos;
        let path_len = usize::from(u16::from_be_bytes(r.array("path length")?));
        if path_len > MAX_PATH_LEN {
            return Err(r.malformed(format!("path of {path_len} bytes exceeds {MAX_PATH_LEN}")));
        }
        let path = std::str::from_utf8(r.take(path_len, "path")?)
            .map_err(|_| BundleError::Malformed {
                offset: record_start,
                reason: "path is not UTF-8".into(),
            })?
            .to_string();
        validate_path(&path)?;
        if let Some(prev) = files.last()
            && prev.path >= path
        {
            return Err(BundleError::Malformed {
                offset: record_start,
                reason: format!("records not in strictly ascending path order at {path:?}"),
            });
        }
        let mode = u32::from_be_bytes(r.array("mode")?);
        if mode > 0o777 {
            return Err(BundleError::Malformed {
                offset: record_start,
                reason: format!("mode {mode:o} of {path:?} has bits beyond 0o777"),
            });
        }
        let len = u64::from_be_bytes(r.array("content length")?);
        if len > MAX_FILE_SIZE {
            return Err(BundleError::FileTooLarge {
                path,
                size: len,
                max: MAX_FILE_SIZE,
            });
        }
        total += len;
        if total > MAX_TOTAL_SIZE {
            return Err(BundleError::BundleTooLarge {
                max: MAX_TOTAL_SIZE,
            });
        }
        // len <= MAX_FILE_SIZE fits in usize on every supported target.
        let content = r.take_shared(len as usize, "file content")?;
        files.push(BundleFile {
            path,
            mode,
            content,
        });
    }
    if r.pos != bytes.len() {
        return Err(r.malformed(format!(
            "{} unexpected bytes after the last record",
            bytes.len() - r.pos
        )));
    }
    let extras: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !is_default_synced(p))
        .collect();
    for p in &extras {
        if !header.extra_files.iter().any(|e| e == p) {
            return Err(BundleError::InvalidPath {
                path: p.to_string(),
                reason: "outside conf/*.conf and conf/ssl/ and not declared as an extra file",
            });
        }
    }
    if header.extra_files.len() != extras.len() {
        return Err(BundleError::Malformed {
            offset: header_start,
            reason: "header declares extra files the bundle does not carry".into(),
        });
    }
    let bundle = Bundle::from_files(files)?;
    let computed = bundle.hash();
    if computed != header.version.hash {
        return Err(BundleError::HashMismatch {
            announced: header.version.hash.chars().take(80).collect(),
            computed,
        });
    }
    Ok((header.version, bundle))
}
