//! Headless Chromium under chromedriver, both Debian packages (`scripts/browser.sh`
//! installs them), driven through WebDriver with `fantoccini`.
//!
//! chromedriver runs as a child process on a free loopback port (killed on drop) and
//! starts Chromium with a fresh profile in a temporary directory. The session asks for
//! Chromium's DevTools network events (`goog:loggingPrefs`), so a test can read the
//! headers the browser really sent and the status each request got.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use fantoccini::{wd::WebDriverCompatibleCommand, Client, ClientBuilder};
use http::Method;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// Where the screenshots of a run go (not committed).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots")
}

/// The browser and its driver: `CHROMIUM` / `CHROMEDRIVER` when set, else `chromium`
/// and `chromedriver` on `PATH`. When either is missing, the test is skipped with a
/// visible notice, or fails in CI ([`crate::common::skip`]).
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = find("CHROMIUM", "chromium");
    let driver = find("CHROMEDRIVER", "chromedriver");
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            crate::common::skip(
                "chromium or chromedriver is not installed",
                crate::common::BROWSER,
            );
            None
        }
    }
}

fn find(var: &str, program: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A loopback port nobody listens on (free when asked; chromedriver binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Running as root (uid 0 owns this process's `/proc/self`): Chromium's sandbox
/// refuses to start then, so it runs with `--no-sandbox`.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A WebDriver session in headless Chromium. Close it with [`Browser::close`]; if a
/// test panics first, dropping it kills chromedriver and removes the profile.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a Chromium session (about a second).
    pub async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let since = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let profile = std::env::temp_dir().join(format!(
            "tower-api-key-chromium-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&profile).expect("profile directory");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,900".to_owned(),
            // Every `*.localhost` and `*.test` name is this machine (IPv4 loopback,
            // where the servers listen): the tests get origins with real site
            // boundaries (`app.example.localhost` and `evil.example.localhost` are one
            // site, `attacker.localhost` another) on one machine.
            "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP *.test 127.0.0.1".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if running_as_root() {
            args.push("--no-sandbox".to_owned());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            // DevTools `Network.*` events, read back with `network_events`, and the
            // console (CSP violations and script errors land there).
            "goog:loggingPrefs": { "performance": "ALL", "browser": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{addr}/"))
            .await
            .expect("a chromedriver session");
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(SessionPost {
                path: "goog/cdp/execute",
                body: json!({ "cmd": cmd, "params": params }),
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// The console messages since the last call: `(level, text)`, e.g.
    /// `("SEVERE", "Refused to execute inline script …")`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self
            .client
            .issue_cmd(SessionPost {
                path: "se/log",
                body: json!({ "type": "browser" }),
            })
            .await
            .expect("browser log");
        entries
            .as_array()
            .expect("log entries")
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The DevTools `Network.*` events since the last call, oldest first: each the
    /// event's `{"method": …, "params": …}`.
    pub async fn network_events(&self) -> Vec<Value> {
        let entries = self
            .client
            .issue_cmd(SessionPost {
                path: "se/log",
                body: json!({ "type": "performance" }),
            })
            .await
            .expect("performance log");
        entries
            .as_array()
            .expect("log entries")
            .iter()
            .filter_map(|entry| {
                let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
                let event = message["message"].clone();
                event["method"]
                    .as_str()?
                    .starts_with("Network.")
                    .then_some(event)
            })
            .collect()
    }

    /// Saves a screenshot of the window as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script`, which ends by calling `arguments[arguments.length - 1](result)`.
    pub async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `POST /session/{id}/{path}` with a JSON body: chromedriver's extensions.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// Runs `test` with a fresh browser, then closes the browser whether the test passed
/// or panicked (so no Chromium outlives a failed test), and passes the panic on.
pub async fn with_browser<F, Fut>(chromium: &Path, chromedriver: &Path, test: F)
where
    F: FnOnce(std::sync::Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let browser = std::sync::Arc::new(Browser::start(chromium, chromedriver).await);
    let outcome = tokio::spawn(test(browser.clone())).await;
    match std::sync::Arc::try_unwrap(browser) {
        Ok(browser) => browser.close().await,
        Err(shared) => {
            let _ = shared.client.clone().close().await;
        }
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
