//! Starts the quickstart example as a real process and talks HTTP to it with a real
//! client, as a user following the README would.

mod common;

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

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
    /// What the server logged (stderr), line by line.
    logs: Arc<Mutex<Vec<String>>>,
    /// What it printed (stdout) before it listened.
    printed: Vec<String>,
    base: String,
    /// The demo keys, when this start minted them (empty when they already existed).
    full: String,
    read_only: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

async fn start() -> Quickstart {
    start_fresh(&[]).await
}

async fn start_with(env: &[(&str, &str)]) -> Quickstart {
    let mut child = Command::new(quickstart_binary())
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
        _child: child,
        logs,
        printed,
        base: base.expect("listening line has the address"),
        full,
        read_only,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

/// A quickstart on the in-memory store, which mints and prints both demo keys.
async fn start_fresh(env: &[(&str, &str)]) -> Quickstart {
    let qs = start_with(env).await;
    for key in [&qs.full, &qs.read_only] {
        assert!(!key.is_empty(), "a fresh start prints both demo keys");
    }
    qs
}

impl Quickstart {
    async fn send(&self, method: Method, path: &str, auth: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        self.send_with(method, path, &headers, "").await
    }

    async fn send_with(
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
}

/// The README's walk-through, over real HTTP: log in, view, try to create (409),
/// revoke, create, use the new key.
#[tokio::test]
async fn key_management_walk_through() {
    let qs = start().await;
    let json = [("content-type", "application/json")];

    let wrong = qs
        .send_with(
            Method::POST,
            "/login",
            &json,
            r#"{"username":"demo","password":"nope"}"#,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers.get("set-cookie").is_none(),
        "no cookie for a wrong password"
    );

    let login = qs
        .send_with(
            Method::POST,
            "/login",
            &json,
            r#"{"username":"demo","password":"demo"}"#,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let set_cookie = login.header("set-cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let session = [("cookie", cookie.as_str())];
    const PATH: &str = "/api/v1/partners/api-key";

    let view = qs.send_with(Method::GET, PATH, &session, "").await;
    assert_eq!(view.status, StatusCode::OK);
    let view: Value = serde_json::from_str(&view.body).unwrap();
    assert_eq!(
        view["prefix"],
        qs.full[..24],
        "the printed full-access key is demo's"
    );

    let conflict = qs.send_with(Method::POST, PATH, &session, "").await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    // A bearer key never opens a session route.
    let bearer = format!("Bearer {}", qs.full);
    let refused = qs.send(Method::POST, PATH, Some(&bearer)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // A cross-site form post with the victim's cookie changes nothing.
    let cross = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "cross-site"),
    ];
    let forged = qs.send_with(Method::DELETE, PATH, &cross, "").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        qs.send(Method::GET, "/api/account", Some(&bearer))
            .await
            .status,
        200
    );

    let revoked = qs.send_with(Method::DELETE, PATH, &session, "").await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        qs.send(Method::GET, "/api/account", Some(&bearer))
            .await
            .status,
        401
    );

    let created = qs.send_with(Method::POST, PATH, &session, "").await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("cache-control"), "no-store");
    let created: Value = serde_json::from_str(&created.body).unwrap();
    let new_key = created["api_key"].as_str().unwrap();
    let new_bearer = format!("Bearer {new_key}");
    let account = qs
        .send(Method::GET, "/api/account", Some(&new_bearer))
        .await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains(&new_key[..24]));
    // Later views: the prefix only.
    let later = qs.send_with(Method::GET, PATH, &session, "").await;
    assert!(later.body.contains(&new_key[..24]) && !later.body.contains(&new_key[24..]));

    // The server's log names keys by prefix and never holds a secret.
    let logs = qs.logs.lock().unwrap().join("\n");
    assert!(logs.contains(&qs.full[..24]), "{logs}");
    for key in [qs.full.as_str(), qs.read_only.as_str(), new_key] {
        assert!(!logs.contains(&key[24..]), "{logs}");
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

/// `RATE_LIMIT=20/s`: one key hammered gets 429 with `Retry-After`, another key is
/// untouched, and wrong-secret guesses under a key's prefix never use up its quota.
#[tokio::test]
async fn rate_limit_over_real_http() {
    let qs = start_fresh(&[("RATE_LIMIT", "20/s")]).await;
    let full = format!("Bearer {}", qs.full);
    let other = format!("Bearer {}", qs.read_only);

    let mut limited = 0;
    let mut retry_after = Vec::new();
    for _ in 0..400 {
        let reply = qs.send(Method::GET, "/api/account", Some(&full)).await;
        assert_eq!(reply.header("ratelimit-policy"), r#""key";q=20;w=1"#);
        match reply.status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert_eq!(reply.header("ratelimit"), r#""key";r=0;t=1"#);
                assert!(reply.body.contains(r#""code":"rate_limited""#));
                retry_after.push(reply.header("retry-after").parse::<u64>().unwrap());
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited > 0, "400 rapid requests at 20/s must hit the limit");
    assert!(retry_after.iter().all(|&s| s >= 1), "{retry_after:?}");
    assert_eq!(
        qs.send(Method::GET, "/api/account", Some(&other))
            .await
            .status,
        200
    );

    let guess = format!("Bearer {}", common::wrong_secret(&qs.read_only));
    for _ in 0..150 {
        let reply = qs.send(Method::GET, "/api/account", Some(&guess)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        qs.send(Method::GET, "/api/account", Some(&other))
            .await
            .status,
        200
    );
}

impl Quickstart {
    /// Logs in as the demo user; the session cookie to send.
    async fn login(&self) -> String {
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

    /// Mints a named key for the logged-in user: its id and raw key.
    async fn mint_named(&self, cookie: &str, name: &str) -> (String, String) {
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

    async fn account_status(&self, key: &str) -> StatusCode {
        self.send(Method::GET, "/api/account", Some(&format!("Bearer {key}")))
            .await
            .status
    }
}

/// `DATABASE_URL=sqlite://…`: keys survive a restart, and seeding the demo keys again
/// creates no duplicates.
#[tokio::test]
async fn sqlite_keys_survive_a_restart_and_seeding_is_idempotent() {
    let dir = std::env::temp_dir().join("tower-api-key-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("quickstart-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let url = format!("sqlite://{}", file.display());

    let first = start_with(&[("DATABASE_URL", &url)]).await;
    assert!(
        !first.full.is_empty(),
        "the first start mints and prints the demo keys"
    );
    let full = first.full.clone();
    assert_eq!(first.account_status(&full).await, StatusCode::OK);
    let cookie = first.login().await;
    let (_, minted) = first.mint_named(&cookie, "before restart").await;
    drop(first); // killed

    let second = start_with(&[("DATABASE_URL", &url)]).await;
    assert!(
        second.full.is_empty() && second.read_only.is_empty(),
        "no new demo keys"
    );
    assert!(
        second
            .printed
            .iter()
            .any(|line| line.contains("already exists") && line.contains("first created")),
        "says the raw keys were shown when first created: {:?}",
        second.printed
    );
    assert_eq!(
        second.account_status(&full).await,
        StatusCode::OK,
        "survived"
    );
    assert_eq!(
        second.account_status(&minted).await,
        StatusCode::OK,
        "survived"
    );
    let cookie = second.login().await;
    let listed = second
        .send_with(Method::GET, "/api/user/keys", &[("cookie", &cookie)], "")
        .await;
    let names: Vec<String> = listed.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "full access").count(),
        1,
        "no duplicate demo key: {names:?}"
    );
    drop(second);
    let _ = std::fs::remove_file(&file);
}

/// Two quickstart processes on one server (`DATABASE_URL`): a key minted through A
/// works at B; revoked through A, it is refused at B within 100 ms.
async fn two_instances(url_var: &str) {
    let Some(url) = common::server_url(url_var) else {
        return;
    };
    let a = start_with(&[("DATABASE_URL", &url)]).await;
    let b = start_with(&[("DATABASE_URL", &url)]).await;
    let cookie = a.login().await;
    let mut slowest = Duration::ZERO;
    let mut minted = Vec::new();
    for trial in 0..5 {
        let (id, key) = a.mint_named(&cookie, &format!("instances {trial}")).await;
        minted.push(key.clone());
        assert_eq!(
            b.account_status(&key).await,
            StatusCode::OK,
            "minted at A, works at B"
        );
        assert_eq!(
            b.account_status(&key).await,
            StatusCode::OK,
            "now cached at B"
        );
        let revoked = a
            .send_with(
                Method::DELETE,
                &format!("/api/user/keys/{id}"),
                &[("cookie", &cookie)],
                "",
            )
            .await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
        let since = std::time::Instant::now();
        while b.account_status(&key).await != StatusCode::UNAUTHORIZED {
            assert!(
                since.elapsed() < Duration::from_millis(100),
                "B still admits the key"
            );
        }
        slowest = slowest.max(since.elapsed());
    }
    eprintln!("{url_var}: revoked at A, refused at B after at most {slowest:?}");
    for qs in [&a, &b] {
        let logs = qs.logs.lock().unwrap().join("\n");
        for key in &minted {
            assert!(!logs.contains(&key[24..]), "a secret in the logs: {logs}");
        }
    }
}

#[tokio::test]
async fn two_instances_on_postgres() {
    two_instances("TEST_POSTGRES_URL").await;
}

#[tokio::test]
async fn two_instances_on_redis() {
    two_instances("TEST_REDIS_URL").await;
}
