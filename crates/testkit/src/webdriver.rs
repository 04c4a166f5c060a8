//! A minimal W3C WebDriver client (HTTP/JSON over a plain TCP connection to a local
//! `chromedriver`) driving headless Debian Chromium: new session, navigate, find element,
//! send keys, click, page source, screenshot, window size. `chromedriver` is started on
//! 127.0.0.1 and stopped by PID on [`Drop`]; the browser gets a fresh `--user-data-dir` in a
//! temporary directory. Needs the `chromium` and `chromium-driver` packages.

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

#[derive(Debug)]
pub struct Browser {
    driver: Option<Child>,
    watchdog: Option<Child>,
    port: u16,
    /// The network namespace chromedriver (and so the browser) runs in, if not this one.
    netns: Option<String>,
    session: String,
    _profile: tempfile::TempDir,
}

/// One WebDriver element reference.
#[derive(Debug, Clone)]
pub struct Element(String);

fn http(
    netns: Option<&str>,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let connect = move || TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    let mut s = match netns {
        Some(ns) => crate::netns::in_netns(ns, connect)?,
        None => connect(),
    }
    .context("connecting to chromedriver")?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("chromedriver closed the connection before answering {method} {path}");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .context("chromedriver answered without Content-Length")?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let payload = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let v: Value = serde_json::from_str(&payload)
        .with_context(|| format!("chromedriver answered {head}: {payload}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("WebDriver {method} {path}: {}", v["value"]);
    }
    Ok(v["value"].clone())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a `width`×`height` window.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Browser> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        Browser::launch(
            Command::new("chromedriver"),
            None,
            port,
            width,
            height,
            false,
        )
    }

    /// Like [`Browser::start`], accepting a self-signed server certificate (the admin
    /// listener's, generated at first start): the W3C `acceptInsecureCerts` capability.
    pub fn start_accepting_self_signed(width: u32, height: u32) -> anyhow::Result<Browser> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        Browser::launch(
            Command::new("chromedriver"),
            None,
            port,
            width,
            height,
            true,
        )
    }

    /// Like [`Browser::start`], with chromedriver and Chromium inside network namespace `ns`
    /// (a lab device: the browser's traffic is the device's). The test still drives it: each
    /// WebDriver connection is made from a thread inside `ns`.
    pub fn start_in_netns(ns: &str, width: u32, height: u32) -> anyhow::Result<Browser> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "chromedriver"]);
        // A namespace of its own: nothing else listens on its loopback.
        Browser::launch(c, Some(ns.to_string()), 9515, width, height, false)
    }

    fn launch(
        mut driver: Command,
        netns: Option<String>,
        port: u16,
        width: u32,
        height: u32,
        accept_insecure_certs: bool,
    ) -> anyhow::Result<Browser> {
        let driver = driver
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (apt-get install chromium chromium-driver)")?;
        let watchdog = crate::spawn_watchdog(driver.id())?;
        let profile = tempfile::Builder::new()
            .prefix("ironfence-chromium")
            .tempdir()?;
        let mut b = Browser {
            driver: Some(driver),
            watchdog: Some(watchdog),
            port,
            netns,
            session: String::new(),
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(b.netns.as_deref(), port, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            // Typed http:// URLs stay http (a captive network has no HTTPS for other names).
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": accept_insecure_certs,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let v = http(b.netns.as_deref(), port, "POST", "/session", Some(&caps))?;
        b.session = v["sessionId"].as_str().context("no sessionId")?.to_string();
        Ok(b)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        http(
            self.netns.as_deref(),
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({"url": url})))
            .map(|_| ())
    }

    pub fn find(&self, css: &str) -> anyhow::Result<Element> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        let id = v[ELEMENT_KEY].as_str().with_context(|| {
            format!(
                "no element {css:?} ({v}) in:\n{}",
                self.source().unwrap_or_default()
            )
        })?;
        Ok(Element(id.to_string()))
    }

    pub fn send_keys(&self, e: &Element, text: &str) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .map(|_| ())
    }

    pub fn click(&self, e: &Element) -> anyhow::Result<()> {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .map(|_| ())
    }

    pub fn source(&self) -> anyhow::Result<String> {
        Ok(self
            .cmd("GET", "/source", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The page source once it contains `text` (a click's navigation may still be loading),
    /// or an error with the last source after 10 s.
    pub fn wait_for_text(&self, text: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let src = self.source()?;
            if src.contains(text) {
                return Ok(src);
            }
            if Instant::now() > deadline {
                bail!("{text:?} not on the page after 10 s:\n{src}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn current_url(&self) -> anyhow::Result<String> {
        Ok(self
            .cmd("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// PNG bytes of the viewport.
    pub fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let v = self.cmd("GET", "/screenshot", None)?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().context("no screenshot")?)
            .context("screenshot is not base64")
    }

    pub fn set_window(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .map(|_| ())
    }

    /// The rendered text of an element.
    pub fn text(&self, e: &Element) -> anyhow::Result<String> {
        Ok(self
            .cmd("GET", &format!("/element/{}/text", e.0), None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// An element's attribute (`None` when absent).
    pub fn attribute(&self, e: &Element, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)?
            .as_str()
            .map(str::to_string))
    }

    /// Whether an element matching `css` is on the page now.
    pub fn exists(&self, css: &str) -> anyhow::Result<bool> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array().is_some_and(|a| !a.is_empty()))
    }

    /// Empties an input.
    pub fn clear(&self, e: &Element) -> anyhow::Result<()> {
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})))
            .map(|_| ())
    }

    /// The current URL once it contains `part` (after a redirect), or an error after 10 s.
    pub fn wait_for_url(&self, part: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url()?;
            if url.contains(part) {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("the URL is {url}, not one with {part:?}, after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The cookies the browser holds for the current page, as WebDriver reports them
    /// (`name`, `value`, `path`, `httpOnly`, `secure`, `sameSite`, …).
    pub fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .cmd("GET", "/cookie", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Sets a cookie for the current page's domain (e.g. a forged session, to test refusals).
    pub fn add_cookie(&self, name: &str, value: &str, path: &str) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            "/cookie",
            Some(json!({"cookie": {"name": name, "value": value, "path": path}})),
        )
        .map(|_| ())
    }

    /// Runs `script` in the page (WebDriver's execute/sync; not subject to the page's CSP)
    /// and returns its result.
    pub fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Deletes the cookies (a fresh visitor).
    pub fn clear_cookies(&self) -> anyhow::Result<()> {
        self.cmd("DELETE", "/cookie", None).map(|_| ())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.netns.as_deref(),
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut d) = self.driver.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}
