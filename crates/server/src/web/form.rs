//! `application/x-www-form-urlencoded` decoding, bounded: at most [`MAX_FIELDS`] fields,
//! valid UTF-8, well-formed percent escapes. Anything else is an error (the caller answers
//! 400), never a panic.

use std::collections::HashMap;

pub const MAX_FIELDS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn decode(s: &str) -> Result<String, Malformed> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or(Malformed)?;
                let h = std::str::from_utf8(hex).map_err(|_| Malformed)?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| Malformed)?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Malformed)
}

/// Field name → value (the first occurrence of a name wins).
pub fn parse(body: &[u8]) -> Result<HashMap<String, String>, Malformed> {
    parse_with_limit(body, MAX_FIELDS)
}

/// [`parse`] with another field limit (admin forms have more fields than the portal's).
pub fn parse_with_limit(
    body: &[u8],
    max_fields: usize,
) -> Result<HashMap<String, String>, Malformed> {
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let mut map = HashMap::new();
    for (n, pair) in text.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= max_fields {
            return Err(Malformed);
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        let v = decode(v)?;
        map.entry(k).or_insert(v);
    }
    Ok(map)
}

/// Percent-encodes a query-string component.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value of `name` in a query string.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    parse(query?.as_bytes()).ok()?.remove(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_malformed() {
        let m = parse(b"username=al%C3%A9+x&password=p%26w%3D&empty=&flag").unwrap();
        assert_eq!(m["username"], "alé x");
        assert_eq!(m["password"], "p&w=");
        assert_eq!(m["empty"], "");
        assert_eq!(m["flag"], "");
        for bad in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%FF", b"\xff=1"] {
            assert_eq!(parse(bad), Err(Malformed), "{bad:?}");
        }
        let many: String = (0..40).map(|i| format!("f{i}=1&")).collect();
        assert_eq!(parse(many.as_bytes()), Err(Malformed));
        assert_eq!(
            decode(&encode("http://a.b/c?d=e f&g")).unwrap(),
            "http://a.b/c?d=e f&g"
        );
    }
}
