//! The quickstart example as a real process on a free loopback port, and a real HTTP
//! client to talk to it (tests/quickstart.rs, tests/browser.rs).

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use super::Reply;

/// `target/<profile>/examples/quickstart`, built (or brought up to date) first: a
/// filtered `cargo test --test quickstart` does not build examples by itself.
pub fn quickstart_binary() -> PathBuf {
    example_binary("quickstart")
}

/// `target/<profile>/examples/<name>`, built (or brought up to date) first.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .args(["build", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // The features these tests were built with that change what the quickstart serves
    // (`/metrics`): the same binary as `cargo test --all-features` built.
    if cfg!(feature = "metrics") {
        build.args(["--features", "metrics"]);
    }
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the example {name} failed");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A running quickstart (killed on drop).
pub struct Quickstart {
    child: Child,
    /// What the server logged (stderr), line by line.
    pub logs: Arc<Mutex<Vec<String>>>,
    /// What it printed (stdout) before it listened.
    pub printed: Vec<String>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The demo keys, when this start minted them (empty when they already existed);
    /// for `named_keys_api`, `full` is the managing key it prints on a line of its own.
    pub full: String,
    pub read_only: String,
    pub client: Client<HttpConnector, Full<Bytes>>,
}

/// A quickstart on the in-memory store, which mints and prints both demo keys.
pub async fn start() -> Quickstart {
    start_fresh(&[]).await
}

/// A quickstart with these extra environment variables, on a free port.
pub async fn start_with(env: &[(&str, &str)]) -> Quickstart {
    start_example("quickstart", env).await
}

/// The example `name` (one that reads `ADDR` and prints `listening` as the
/// quickstart does) with these extra environment variables, on a free port.
pub async fn start_example(name: &str, env: &[(&str, &str)]) -> Quickstart {
    let mut child = Command::new(example_binary(name))
        .env("ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start quickstart");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let sink = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut full, mut read_only, mut base) = (String::new(), String::new(), None);
    let mut printed = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            printed.push(line.clone());
            let last = line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned();
            let is_key = last.starts_with("pk_live_") && last.len() == 72;
            if line.starts_with("full access: ") && is_key {
                full = last;
            } else if line.starts_with("read only: ") && is_key {
                read_only = last;
            } else if is_key && line.trim() == last {
                full = last;
            } else if line.contains("listening") {
                base = Some(last);
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("quickstart printed `listening` in time");
    Quickstart {
        child,
        logs,
        printed,
        base: base.expect("listening line has the address"),
        full,
        read_only,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

/// A quickstart on the in-memory store, which mints and prints both demo keys.
pub async fn start_fresh(env: &[(&str, &str)]) -> Quickstart {
    let qs = start_with(env).await;
    for key in [&qs.full, &qs.read_only] {
        assert!(!key.is_empty(), "a fresh start prints both demo keys");
    }
    qs
}

impl Quickstart {
    /// Sends SIGTERM (what `docker stop` sends) and waits for the exit (10 s at most);
    /// the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the quickstart exits within 10 s of SIGTERM")
            .expect("wait for the quickstart")
    }

    /// `host:port` the quickstart listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// `method path` with `Authorization: <auth>` when given.
    pub async fn send(&self, method: Method, path: &str, auth: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        self.send_with(method, path, &headers, "").await
    }

    /// `method path` with these headers and body.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::from(body.to_owned())).unwrap())
            .await
            .expect("HTTP request");
        Reply::read(response).await
    }

    /// Logs in as the demo user; the session cookie to send.
    pub async fn login(&self) -> String {
        let reply = self
            .send_with(
                Method::POST,
                "/login",
                &[("content-type", "application/json")],
                r#"{"username":"demo","password":"demo"}"#,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply
            .header("set-cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Mints a named key for the demo user: its id and raw key.
    pub async fn mint_named(&self, cookie: &str, name: &str) -> (String, String) {
        let reply = self
            .send_with(
                Method::POST,
                "/api/user/keys",
                &[("cookie", cookie), ("content-type", "application/json")],
                &format!(r#"{{"name":"{name}"}}"#),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let json = reply.json();
        (
            json["id"].as_str().unwrap().to_owned(),
            json["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// The status of `GET /api/account` with this key.
    pub async fn account_status(&self, key: &str) -> StatusCode {
        self.send(Method::GET, "/api/account", Some(&format!("Bearer {key}")))
            .await
            .status
    }
}
