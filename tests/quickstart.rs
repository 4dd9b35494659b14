//! Starts the quickstart example as a real process and talks HTTP to it with a real
//! client, as a user following the README would.

mod common;

use std::{path::PathBuf, process::Stdio, time::Duration};

use bytes::Bytes;
use common::{Reply, INVALID_BODY};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// `target/<profile>/examples/quickstart`, built (or brought up to date) first: a
/// filtered `cargo test --test quickstart` does not build examples by itself.
fn quickstart_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .args(["build", "--example", "quickstart"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "building the quickstart failed");
    profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX))
}

struct Quickstart {
    _child: Child,
    base: String,
    full: String,
    read_only: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn start() -> Quickstart {
    let mut child = Command::new(quickstart_binary())
        .env("ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start quickstart");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut full, mut read_only, mut base) = (None, None, None);
    let read = async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let last = line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned();
            if line.starts_with("full access: ") {
                full = Some(last);
            } else if line.starts_with("read only: ") {
                read_only = Some(last);
            } else if line.contains("listening") {
                base = Some(last);
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("quickstart printed `listening` in time");
    let full = full.expect("full access key printed");
    let read_only = read_only.expect("read only key printed");
    for key in [&full, &read_only] {
        assert!(key.starts_with("pk_live_") && key.len() == 72, "{key}");
    }
    Quickstart {
        _child: child,
        base: base.expect("listening line has the address"),
        full,
        read_only,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl Quickstart {
    async fn send(&self, method: Method, path: &str, auth: Option<&str>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = self
            .client
            .request(request.body(Full::default()).unwrap())
            .await
            .expect("HTTP request");
        Reply::read(response).await
    }
}

#[tokio::test]
async fn quickstart_over_real_http() {
    let qs = start().await;
    let bearer = |key: &str| format!("Bearer {key}");

    let health = qs.send(Method::GET, "/health", None).await;
    assert_eq!(health.status, StatusCode::OK);

    let anonymous = qs.send(Method::GET, "/api/account", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers["www-authenticate"],
        r#"Bearer realm="api""#
    );
    assert_eq!(anonymous.headers["content-type"], "application/json");
    assert_eq!(anonymous.headers["cache-control"], "no-store");
    assert_eq!(anonymous.body, INVALID_BODY);

    let account = qs
        .send(Method::GET, "/api/account", Some(&bearer(&qs.full)))
        .await;
    assert_eq!(account.status, StatusCode::OK);
    let json: Value = serde_json::from_str(&account.body).expect("json");
    assert_eq!(json["account"], "demo");
    assert_eq!(json["key"]["prefix"], qs.full[..24]);
    assert!(!account.body.contains(&qs.full[24..]), "secret in the body");

    let other = qs
        .send(Method::GET, "/api/account", Some(&bearer(&qs.read_only)))
        .await;
    assert_eq!(other.status, StatusCode::OK);
    let json: Value = serde_json::from_str(&other.body).expect("json");
    assert_ne!(json["account"], "demo");

    let denied = qs
        .send(Method::POST, "/api/signals", Some(&bearer(&qs.read_only)))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body.contains(r#""code":"forbidden""#));
    assert_eq!(
        denied.headers["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="signals:write""#
    );

    let created = qs
        .send(Method::POST, "/api/signals", Some(&bearer(&qs.full)))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let no_key = qs.send(Method::POST, "/api/signals", None).await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);

    let wrong = common::wrong_secret(&qs.full);
    let wrong = qs
        .send(Method::GET, "/api/account", Some(&bearer(&wrong)))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, anonymous.body);

    let huge = format!("Bearer {}", "a".repeat(16 * 1024));
    let huge = qs.send(Method::GET, "/api/account", Some(&huge)).await;
    assert!(huge.status.is_client_error(), "{}", huge.status);
    let health = qs.send(Method::GET, "/health", None).await;
    assert_eq!(
        health.status,
        StatusCode::OK,
        "still serving after a huge header"
    );
    let again = qs
        .send(Method::GET, "/api/account", Some(&bearer(&qs.full)))
        .await;
    assert_eq!(again.status, StatusCode::OK);
}
