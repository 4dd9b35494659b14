//! Starts the quickstart example as a real process and talks HTTP to it with a real
//! client, as a user following the README would.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{
    quickstart::{start, start_fresh, start_with},
    INVALID_BODY,
};
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_api_key::{store::SqliteKeyStore, KeyStore};

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

/// Two quickstarts on one PostgreSQL or Redis with `RATE_LIMIT=20/m` admit no more
/// for a key than one would: the limit is counted in the store they share. (A key
/// over its limit gets it a slice at a time, so a few of the 20 may still wait in the
/// store for the next slice when the burst ends: 15 at least.)
async fn two_instances_admit_a_keys_limit_once(url_var: &str) {
    let Some(url) = common::server_url(url_var) else {
        return;
    };
    let env = [("DATABASE_URL", url.as_str()), ("RATE_LIMIT", "20/m")];
    let a = start_with(&env).await;
    let b = start_with(&env).await;
    let cookie = a.login().await;
    let (_, key) = a.mint_named(&cookie, "shared limit").await;
    let mut admitted = 0;
    for i in 0..60 {
        let at = if i % 2 == 0 { &a } else { &b };
        match at.account_status(&key).await {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (15..=21).contains(&admitted),
        "{url_var}: two instances admitted {admitted} of a 20/m key"
    );
}

#[tokio::test]
async fn two_instances_on_postgres_admit_a_keys_limit_once() {
    two_instances_admit_a_keys_limit_once("TEST_POSTGRES_URL").await;
}

#[tokio::test]
async fn two_instances_on_redis_admit_a_keys_limit_once() {
    two_instances_admit_a_keys_limit_once("TEST_REDIS_URL").await;
}

/// Finding: `POST /logout` accepted cross-site requests (a form on another site could
/// end the victim's session) while `POST /login` refused them. Both now go through
/// the same check: 403, and no cookie-clearing `Set-Cookie`.
#[tokio::test]
async fn cross_site_logout_is_refused() {
    let qs = start().await;
    let cookie = qs.login().await;
    let attacks: [&[(&str, &str)]; 3] = [
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        &[("cookie", &cookie), ("sec-fetch-site", "same-site")],
        &[("cookie", &cookie), ("origin", "http://attacker.example")],
    ];
    for headers in attacks {
        let form = [
            headers,
            &[("content-type", "application/x-www-form-urlencoded")],
        ]
        .concat();
        let reply = qs.send_with(Method::POST, "/logout", &form, "").await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{headers:?}: {}",
            reply.body
        );
        assert_eq!(
            reply.envelope().error.code,
            tower_api_key::ErrorCode::Forbidden
        );
        assert!(
            reply.headers.get("set-cookie").is_none(),
            "{headers:?}: a refused logout must not clear the cookie"
        );
    }
    let keys = qs
        .send_with(Method::GET, "/api/user/keys", &[("cookie", &cookie)], "")
        .await;
    assert_eq!(keys.status, StatusCode::OK, "the session still works");

    let own = qs
        .send_with(
            Method::POST,
            "/logout",
            &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
            "",
        )
        .await;
    assert_eq!(own.status, StatusCode::NO_CONTENT, "{}", own.body);
    assert!(own.header("set-cookie").starts_with("session=;"));
}

/// Finding: the quickstart stopped cleanly on Ctrl-C only; on SIGTERM (what containers
/// are sent) it died at once, without writing the last uses held in memory. Now it
/// exits 0 and the last use is in the database.
#[tokio::test]
async fn sigterm_stops_cleanly_and_flushes_last_use() {
    let dir = std::env::temp_dir().join("tower-api-key-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("sigterm-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let url = format!("sqlite://{}", file.display());

    let qs = start_fresh(&[("DATABASE_URL", &url)]).await;
    let full = qs.full.clone();
    assert_eq!(
        qs.account_status(&full).await,
        StatusCode::OK,
        "first use: written"
    );
    // Apart by far more than a tick of the coarse clock uses are noted at (it may lag
    // the system clock read here by up to a tick: 4 ms at 250 Hz, 10 ms at 100 Hz).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before_second = SystemTime::now();
    assert_eq!(
        qs.account_status(&full).await,
        StatusCode::OK,
        "second use: in memory"
    );
    let status = qs.terminate().await;
    assert!(status.success(), "SIGTERM: clean exit, got {status:?}");

    let store = SqliteKeyStore::connect(&url).await.expect("open the file");
    let records = store.list_by_owner("demo").await.expect("list");
    let record = records
        .iter()
        .find(|r| r.name == "full access")
        .expect("the demo key");
    let last_used = record.last_used_at.expect("a last use was written");
    let second_ms = before_second
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let stored_ms = last_used
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    const COARSE_TICK_MS: u128 = 15;
    assert!(
        stored_ms + COARSE_TICK_MS >= second_ms,
        "the second use was flushed at shutdown ({stored_ms} ms < {second_ms} ms)"
    );
    let _ = std::fs::remove_file(&file);
}

/// Finding: `axum::serve` has no deadline for the request head, so a client sending
/// half a request held its connection forever. The quickstart closes it after
/// `HEADER_READ_TIMEOUT_SECS`.
#[tokio::test]
async fn a_half_sent_request_head_is_cut_off() {
    let qs = start_with(&[("HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut stream = tokio::net::TcpStream::connect(qs.addr()).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the server closes the connection within 5 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer to the half request: {read:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after about the 1 s timeout, not {waited:?}"
    );
    assert_eq!(
        qs.send(Method::GET, "/health", None).await.status,
        StatusCode::OK,
        "other clients are served"
    );
}

/// Issue 17 §2: the quickstart's `/metrics` (Prometheus text) counts verifications by
/// outcome, times them, and counts rate-limit decisions; no key, no prefix and no
/// owner appears in it. Only loopback clients may read it. (With `--features
/// metrics`, as the README's test command has it.)
#[cfg(feature = "metrics")]
#[tokio::test]
async fn metrics_count_verifications_and_show_no_secret() {
    let qs = start_with(&[("RATE_LIMIT", "2/m")]).await;
    for _ in 0..3 {
        qs.account_status(&qs.full).await;
    }
    let unknown = tower_api_key::ApiKey::generate(tower_api_key::KeyMode::Live).unwrap();
    assert_eq!(
        qs.account_status(unknown.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let scrape = qs.send(Method::GET, "/metrics", None).await;
    assert_eq!(scrape.status, StatusCode::OK);
    let text = scrape.body;
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(line_start))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    };
    assert_eq!(
        value(r#"tower_api_key_verifications_total{outcome="admitted"}"#),
        2.0
    );
    assert_eq!(
        value(r#"tower_api_key_verifications_total{outcome="rate_limited"}"#),
        1.0
    );
    assert_eq!(
        value(r#"tower_api_key_verifications_total{outcome="invalid_credentials"}"#),
        1.0
    );
    assert!(
        value(r#"tower_api_key_verification_duration_seconds_count{outcome="admitted"}"#) >= 2.0
    );
    assert_eq!(
        value(
            r#"tower_api_key_rate_limit_decisions_total{limit="key",counted="in_process",decision="limited"}"#
        ),
        1.0
    );
    for secret in [&qs.full, &qs.full[..24], unknown.expose_secret(), "demo"] {
        assert!(
            !text.contains(secret),
            "{secret} in the exposition:\n{text}"
        );
    }
    println!("a scrape of the quickstart's /metrics:\n{text}");
}

/// Issue 17 §3: the quickstart's `/openapi.json` is an OpenAPI 3.1 document that
/// lists every management route the router mounts (each answers on the real server:
/// none is a 404 or 405), with the bearer and session schemes and the envelope.
#[tokio::test]
async fn openapi_lists_every_management_route() {
    let qs = start().await;
    let reply = qs.send(Method::GET, "/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc: utoipa::openapi::OpenApi =
        serde_json::from_str(&reply.body).expect("an OpenAPI 3.1 document utoipa reads back");
    let json: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["openapi"], "3.1.0");
    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in json["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.push((method.to_uppercase(), path.clone()));
        }
    }
    listed.sort();
    let one = "/api/v1/partners/api-key";
    let named = "/api/user/keys";
    let mut mounted: Vec<(String, String)> = [
        ("GET", one.to_owned()),
        ("POST", one.to_owned()),
        ("DELETE", one.to_owned()),
        ("POST", format!("{one}/rotate")),
        ("GET", format!("{one}/usage")),
        ("GET", named.to_owned()),
        ("POST", named.to_owned()),
        ("DELETE", named.to_owned()),
        ("DELETE", format!("{named}/{{id}}")),
        ("POST", format!("{named}/{{id}}/rotate")),
        ("GET", format!("{named}/{{id}}/usage")),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p))
    .collect();
    mounted.sort();
    assert_eq!(
        listed, mounted,
        "the document lists exactly the mounted routes"
    );
    // Each is mounted: with a session, none answers 404 for the route or 405.
    let cookie = qs.login().await;
    let (id, _) = qs.mint_named(&cookie, "doc").await;
    for (method, path) in &mounted {
        if method == "DELETE" || method == "POST" {
            continue; // mounted-ness of changes is covered by the management tests
        }
        let path = path.replace("{id}", &id);
        let reply = qs
            .send_with(method.parse().unwrap(), &path, &[("cookie", &cookie)], "")
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {}",
            reply.body
        );
    }
    let components = doc.components.expect("components");
    assert!(components.security_schemes.contains_key("api_key"));
    assert!(components.security_schemes.contains_key("session"));
    for schema in [
        "Error",
        "KeyView",
        "MintedKey",
        "KeyUsage",
        "NewKey",
        "UsageCounts",
    ] {
        assert!(components.schemas.contains_key(schema), "{schema}");
    }
    assert!(reply.body.contains(r#""scheme":"bearer""#));
}
