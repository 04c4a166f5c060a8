//! The OS captive-portal probes: what each operating system fetches to find out whether it
//! is behind a portal, the answer that means "open Internet" (sent once the device is
//! registered) and, while unregistered, a redirect to the portal (which every one of them
//! takes as "captive": the answer differs from the expected one).

/// Who is probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `captive.apple.com/hotspot-detect.html` (and any path of it), `www.apple.com/library/test/success.html`.
    Apple,
    /// `connectivitycheck.gstatic.com/generate_204`, `clients3.google.com/generate_204`, …
    Android,
    /// `www.msftconnecttest.com/connecttest.txt`.
    WindowsConnectTest,
    /// `www.msftncsi.com/ncsi.txt`.
    WindowsNcsi,
    /// `detectportal.firefox.com/canonical.html`.
    FirefoxCanonical,
    /// `detectportal.firefox.com/success.txt`.
    FirefoxSuccess,
}

/// The "not captive" answer of a probe: status, content type, body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessAnswer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// Table: (host, path) → probe. Host compared without port, case-insensitive.
const TABLE: &[(&str, &str, Probe)] = &[
    ("captive.apple.com", "*", Probe::Apple),
    ("www.apple.com", "/library/test/success.html", Probe::Apple),
    (
        "connectivitycheck.gstatic.com",
        "/generate_204",
        Probe::Android,
    ),
    (
        "connectivitycheck.android.com",
        "/generate_204",
        Probe::Android,
    ),
    ("clients3.google.com", "/generate_204", Probe::Android),
    ("www.google.com", "/gen_204", Probe::Android),
    (
        "www.msftconnecttest.com",
        "/connecttest.txt",
        Probe::WindowsConnectTest,
    ),
    ("www.msftncsi.com", "/ncsi.txt", Probe::WindowsNcsi),
    (
        "detectportal.firefox.com",
        "/canonical.html",
        Probe::FirefoxCanonical,
    ),
    (
        "detectportal.firefox.com",
        "/success.txt",
        Probe::FirefoxSuccess,
    ),
];

/// Which probe a request is (`host` as in the Host header, `path` without the query).
pub fn classify(host: &str, path: &str) -> Option<Probe> {
    let host = strip_port(host).trim_end_matches('.');
    TABLE
        .iter()
        .find(|(h, p, _)| h.eq_ignore_ascii_case(host) && (*p == "*" || *p == path))
        .map(|(_, _, probe)| *probe)
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

impl Probe {
    /// What the OS expects when it is not captive.
    pub fn success(self) -> SuccessAnswer {
        match self {
            Probe::Apple => SuccessAnswer {
                status: 200,
                content_type: "text/html",
                body: "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
            },
            Probe::Android => SuccessAnswer {
                status: 204,
                content_type: "text/plain",
                body: "",
            },
            Probe::WindowsConnectTest => SuccessAnswer {
                status: 200,
                content_type: "text/plain",
                body: "Microsoft Connect Test",
            },
            Probe::WindowsNcsi => SuccessAnswer {
                status: 200,
                content_type: "text/plain",
                body: "Microsoft NCSI",
            },
            Probe::FirefoxCanonical => SuccessAnswer {
                status: 200,
                content_type: "text/html",
                body: "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>",
            },
            Probe::FirefoxSuccess => SuccessAnswer {
                status: 200,
                content_type: "text/plain",
                body: "success\n",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(
            classify("captive.apple.com", "/hotspot-detect.html"),
            Some(Probe::Apple)
        );
        assert_eq!(
            classify("CAPTIVE.apple.com:80", "/anything"),
            Some(Probe::Apple)
        );
        assert_eq!(
            classify("connectivitycheck.gstatic.com", "/generate_204"),
            Some(Probe::Android)
        );
        assert_eq!(
            classify("www.msftconnecttest.com", "/connecttest.txt"),
            Some(Probe::WindowsConnectTest)
        );
        assert_eq!(
            classify("www.msftncsi.com", "/ncsi.txt"),
            Some(Probe::WindowsNcsi)
        );
        assert_eq!(
            classify("detectportal.firefox.com", "/success.txt"),
            Some(Probe::FirefoxSuccess)
        );
        assert_eq!(
            classify("detectportal.firefox.com.", "/canonical.html"),
            Some(Probe::FirefoxCanonical)
        );
        assert_eq!(classify("example.org", "/generate_204"), None);
        assert_eq!(classify("www.msftncsi.com", "/other"), None);
        assert_eq!(Probe::Android.success().status, 204);
        assert_eq!(Probe::WindowsNcsi.success().body, "Microsoft NCSI");
    }
}
