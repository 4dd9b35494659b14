//! Starts the quickstart example as a real process and talks HTTP to it with a real
//! client, as a user following the README would.

mod common;

use std::time::Duration;

use common::{
    quickstart::{start, start_fresh, start_with},
    INVALID_BODY,
};
use http::{Method, StatusCode};
use serde_json::Value;

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
