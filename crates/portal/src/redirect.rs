//! The destination URL a device asked for before it was sent to the portal, shown as a
//! "continue" link once registered. Never an open redirect: the portal itself never answers
//! a redirect to it, and only a plain `http(s)://host[:port]/path?query` with a DNS name or
//! IP literal passes; anything else (other schemes, `//host`, backslashes, user info, control
//! characters, over-long values) becomes `None`.

const MAX_LEN: usize = 2048;

/// The sanitized destination, or `None`.
pub fn sanitize(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_LEN {
        return None;
    }
    if raw.chars().any(|c| {
        c.is_control() || c.is_whitespace() || c == '\\' || c == '"' || c == '<' || c == '>'
    }) {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))?;
    let scheme_len = raw.len() - rest.len();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &raw[scheme_len..scheme_len + authority_end];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.parse::<u16>().is_err() {
                return None;
            }
            (h, Some(p))
        }
        _ => (authority, None),
    };
    let _ = port;
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    host_ok.then(|| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_pass() {
        for ok in [
            "http://example.org/",
            "https://example.org",
            "https://www.example.org:8443/a/b?c=d&e=f#g",
            "http://192.0.2.1/x",
            "http://[2001:db8::1]:80/",
        ] {
            assert_eq!(sanitize(ok).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "//evil.example/",
            "/\\evil.example",
            "https:/\\evil.example",
            "http://user:pass@evil.example/",
            "http://evil.example\\@good.example/",
            "http://exa mple.org/",
            "http://example.org/\r\nSet-Cookie: x",
            "ftp://example.org/",
            "http://",
            "http://:80/",
            "http://example.org:99999/",
            "http://exa_mple.org/",
            "http://example.org/\"><script>",
        ] {
            assert_eq!(sanitize(bad), None, "{bad:?}");
        }
        assert_eq!(
            sanitize(&format!("http://a.org/{}", "x".repeat(3000))),
            None
        );
    }
}

#[cfg(test)]
mod props {
    use super::sanitize;
    use proptest::prelude::*;

    proptest! {
        /// Any input: no panic; what passes is the input itself, an http(s) URL with a host,
        /// and never carries characters that could break out of an attribute or a header.
        #[test]
        fn sanitize_is_total_and_conservative(s in "\\PC{0,80}|(https?://)[ -~]{0,60}") {
            if let Some(out) = sanitize(&s) {
                prop_assert_eq!(&out, &s);
                let lower = out.to_ascii_lowercase();
                prop_assert!(lower.starts_with("http://") || lower.starts_with("https://"));
                prop_assert!(!out.contains(['"', '<', '>', '\\', '\r', '\n', ' ']));
                let after = &lower[lower.find("://").unwrap() + 3..];
                prop_assert!(!after.starts_with('/') && !after.is_empty());
            }
        }
    }
}
