//! A real browser for the dashboard's tests and the demo's screenshots:
//! Debian's headless Chromium driven over WebDriver (fantoccini) by a
//! chromedriver this code starts, in its own process group
//! ([`testkit::Process`]) so that no browser outlives it.
//!
//! The daemon's API listens inside a network namespace, so the browser
//! runs there too: [`in_netns`] runs a future on a thread that entered
//! the namespace, and every socket and process it starts (chromedriver,
//! Chromium, the WebDriver connection) is inside it.

// Shared by the test and the demo's example, each using a part of it.
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `body` on a thread inside network namespace `netns` (`None`:
/// here), on a runtime of its own; a panic in it is the caller's.
pub fn in_netns<T: Send + 'static>(
    netns: Option<String>,
    body: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let t = std::thread::spawn(move || {
        if let Some(ns) = &netns {
            linux_dataplane::netns::enter(ns).unwrap_or_else(|e| panic!("enter {ns}: {e}"));
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(body())
    });
    match t.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// The flags Chromium needs here: headless, no sandbox (root), and none
/// of its background connections (this machine refuses them).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--hide-scrollbars",
];

/// A browser: chromedriver, Chromium, and the WebDriver session.
pub struct Browser {
    pub client: Client,
    port: u16,
    session: String,
    _profile: Profile,
    _driver: testkit::Process,
}

/// A fresh profile folder, removed on drop.
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Starts chromedriver and Chromium (in the calling thread's
    /// namespace) and opens a session with the browser's log kept.
    pub async fn start(tag: &str) -> Browser {
        testkit::need("chromedriver", "chromium-driver");
        testkit::need("chromium", "chromium");
        let port = free_port();
        let profile = Profile(
            std::env::temp_dir().join(format!("tg-chromium-{tag}-{}-{port}", std::process::id())),
        );
        let _ = std::fs::remove_dir_all(&profile.0);
        std::fs::create_dir_all(&profile.0).unwrap();
        let driver = testkit::Process::spawn(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.0.display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        caps.insert(
            "goog:loggingPrefs".into(),
            serde_json::json!({"browser": "ALL"}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with Chromium");
        let session = client.session_id().await.unwrap().expect("a session id");
        Browser {
            client,
            port,
            session,
            _profile: profile,
            _driver: driver,
        }
    }

    /// The browser's console messages since the last call, as (level,
    /// text); chromedriver's log endpoint clears what it returns.
    pub fn console(&self) -> Vec<(String, String)> {
        let body = r#"{"type":"browser"}"#;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST /session/{}/se/log HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.session,
            body.len()
        )
        .unwrap();
        // chromedriver keeps the connection open: read the headers, then
        // exactly the body they announce.
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).expect("chromedriver's answer");
            raw.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        let mut body = vec![0u8; length];
        s.read_exact(&mut body).expect("chromedriver's answer");
        let answer = String::from_utf8_lossy(&body);
        let json = &answer[..];
        let v: serde_json::Value = serde_json::from_str(json).expect("the log as JSON");
        v["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or("").to_string(),
                            e["message"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Errors in the console since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        self.console()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .map(|(_, m)| m)
            .collect()
    }

    /// Runs a script; its result.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` (returning a boolean) holds.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let start = Instant::now();
        loop {
            if self.js(script).await == serde_json::Value::Bool(true) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; the page shows:\n{}",
                self.js("return document.querySelector('main')?.innerText ?? ''")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page has drawn: its heading is there and nothing
    /// is loading.
    pub async fn ready(&self) {
        self.wait_for(
            "the page",
            "return !!document.querySelector('main h1') && !document.body.dataset.loading",
        )
        .await;
    }

    /// Opens `url` and waits until it has drawn.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        self.ready().await;
    }

    /// Signs in on the page at `base` with `token`.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.client.goto(base).await.unwrap();
        self.wait_for(
            "the sign-in form",
            "return !!document.querySelector('#signin')",
        )
        .await;
        let field = self.client.find(Locator::Css("#token")).await.unwrap();
        field.send_keys(token).await.unwrap();
        self.client
            .find(Locator::Css("#signin button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for("signed in", "return !document.querySelector('#signin') && !!document.querySelector('main h1') && !document.body.dataset.loading")
            .await;
    }

    /// The status of a GET from the page (with its session cookie).
    pub async fn fetch_status(&self, path: &str) -> u16 {
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(arguments[0], {credentials: 'same-origin'}).then(r => done(r.status), e => done(String(e)));",
                vec![serde_json::json!(path)],
            )
            .await
            .unwrap();
        v.as_u64().unwrap_or_else(|| panic!("fetch {path}: {v}")) as u16
    }

    /// The JSON of a GET from the page.
    pub async fn fetch_json(&self, path: &str) -> serde_json::Value {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.json()).then(done, e => done(String(e)));",
                vec![serde_json::json!(path)],
            )
            .await
            .unwrap()
    }

    /// A screenshot of the page into `file`.
    pub async fn screenshot(&self, file: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(d) = file.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(file, png).unwrap();
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn quit(self) {
        let _ = self.client.close().await;
    }
}
