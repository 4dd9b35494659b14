//! End-to-end tests in a real headless Chromium driven through chromedriver
//! (`bash scripts/browser.sh` installs both from Debian; without them these tests are
//! skipped locally and fail in CI).
//!
//! Origins: the browser resolves `*.localhost` and `*.test` names to loopback, so the
//! tests get real site boundaries on one machine. The victim is
//! `app.example.localhost`; a *cross-site* attacker is `attacker.localhost` (another
//! registrable domain), a *same-site* attacker is `evil.example.localhost` (a sibling
//! subdomain: the same site, another origin, like a compromised or user-content
//! subdomain). The session cookie is host-only, so neither attacker server ever
//! receives it. `*.localhost` is loopback, so Chromium treats it as a secure context
//! and sends the fetch-metadata headers (`Sec-Fetch-*`); the `*.test` family repeats
//! the attacks where it does not (plain http to a name that is not loopback), so the
//! `Origin` fallback is exercised too.
//!
//! Screenshots of each state go to `target/screenshots/` (not committed).

#[path = "browser/attacker.rs"]
mod attacker;
mod common;
#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/network.rs"]
mod network;

use std::{sync::Arc, time::Duration};

use attacker::Attacker;
use axum::{routing::post, Router};
use common::quickstart::{self, Quickstart};
use driver::{with_browser, Browser};
use http::{header::SET_COOKIE, HeaderValue, Method, StatusCode};
use network::Exchange;
use serde_json::{json, Value};
use tower_api_key::{
    manage::{self, Keys},
    session::{CookieSessions, SessionGuardLayer, SessionUser},
    store::{InsertRule, KeyStore},
    ApiKey, Authenticator, InMemoryKeyStore, KeyMode, KeyRecord,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A victim host and its two attackers' hosts.
#[derive(Clone, Copy, Debug)]
struct Sites {
    victim: &'static str,
    cross_site: &'static str,
    same_site: &'static str,
    /// Whether Chromium sends `Sec-Fetch-*` to the victim (only to secure contexts).
    fetch_metadata: bool,
}

/// Loopback names: secure contexts, with fetch metadata.
const LOOPBACK: Sites = Sites {
    victim: "app.example.localhost",
    cross_site: "attacker.localhost",
    same_site: "evil.example.localhost",
    fetch_metadata: true,
};

/// Plain http to names that are not loopback (to the browser): no fetch metadata,
/// only `Origin`.
const PLAIN_HTTP: Sites = Sites {
    victim: "app.example.test",
    cross_site: "attacker.test",
    same_site: "evil.example.test",
    fetch_metadata: false,
};

/// Logs the browser in from a page on the victim's origin with the JSON login
/// (`{"username":"demo","password":"demo"}`); the status.
const JSON_LOGIN: &str = r#"const done = arguments[arguments.length - 1];
fetch("/login", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ username: "demo", password: "demo" }) })
  .then(r => done(r.status), e => done(String(e)));"#;

/// What a logged-in owner sees of the demo account through the JSON endpoints.
#[derive(Debug, PartialEq)]
struct AccountState {
    named: Value,
    one_active: Value,
}

async fn account_state(qs: &Quickstart, cookie: &str) -> AccountState {
    let mut views = Vec::new();
    for path in ["/api/user/keys", "/api/v1/partners/api-key"] {
        let reply = qs
            .send_with(Method::GET, path, &[("cookie", cookie)], "")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        views.push(reply.json());
    }
    let one_active = views.pop().unwrap();
    AccountState {
        named: views.pop().unwrap(),
        one_active,
    }
}

/// Waits (10 s at most) until the page is `url` and has a body text; that text.
async fn page_text_at(b: &Browser, url: &str) -> String {
    for _ in 0..200 {
        let here = b.client.current_url().await.expect("current url");
        if here.as_str() == url {
            let text = b.js(
                "return document.body ? document.body.innerText : ''",
                vec![],
            );
            if let Value::String(text) = text.await {
                if !text.is_empty() {
                    return text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser did not arrive at {url}");
}

/// The one exchange matching `pick`.
#[track_caller]
fn one<'a>(seen: &'a [&'a Exchange], what: &str, pick: impl Fn(&Exchange) -> bool) -> &'a Exchange {
    let found: Vec<_> = seen.iter().copied().filter(|e| pick(e)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}");
    found[0]
}

/// The attack pages of `attacker` (serving `sites`' attackers' hosts), against the
/// victim's `origin` in a browser logged in there; asserts what the browser sent and
/// what the server answered (403 for every request that reached it).
async fn attack(b: &Browser, sites: Sites, victim: &str, attacker: &Attacker, target: &str) {
    let family = if sites.fetch_metadata {
        "loopback"
    } else {
        "plain-http"
    };
    let rotate = format!("{victim}/api/v1/partners/api-key/rotate");
    let create = format!("{victim}/api/user/keys");
    let delete = format!("{victim}/api/user/keys/{target}");
    let scenarios = [
        (sites.cross_site, "cross-site", false),
        (sites.same_site, "same-site", true),
    ];
    for (n, (host, site, cookie_sent)) in scenarios.into_iter().enumerate() {
        let origin = format!("http://{host}:{}", attacker.port);
        let fetch_site = sites.fetch_metadata.then_some(site);
        b.client.goto(&format!("{origin}/fetch")).await.unwrap();
        let report = attacker.report(n + 1).await;
        eprintln!("{family} {site} attacker's page saw: {report:?}");
        assert_eq!(report[0]["name"], "delete");
        assert_eq!(report[0]["outcome"], "failed", "{report:?}");
        assert_eq!(report[1]["name"], "create");
        assert_eq!(report[1]["type"], "opaque", "no-cors: nothing readable");
        b.screenshot(&format!("attack-{family}-{site}-fetch")).await;

        b.client.goto(&format!("{origin}/form")).await.unwrap();
        let shown: Value =
            serde_json::from_str(&page_text_at(b, &rotate).await).expect("a JSON answer");
        assert_eq!(shown["error"]["code"], "forbidden", "{shown}");
        b.screenshot(&format!("attack-{family}-{site}-form")).await;

        let all = network::exchanges(&b.network_events().await);
        let seen: Vec<&Exchange> = all.iter().filter(|e| e.url.starts_with(victim)).collect();
        for exchange in &seen {
            eprintln!("{family} {site} attacker -> victim: {}", exchange.summary());
        }
        // DELETE: the preflight is not granted, so the DELETE itself is never sent.
        let preflight = one(&seen, "DELETE preflight", |e| {
            e.preflight && e.url == delete
        });
        assert_eq!(preflight.status, Some(405), "{preflight:#?}");
        assert_eq!(
            preflight.header("access-control-request-method"),
            Some("DELETE")
        );
        assert_eq!(preflight.header("sec-fetch-site"), fetch_site);
        let deleted = one(&seen, "DELETE", |e| !e.preflight && e.method == "DELETE");
        assert_eq!(deleted.status, None, "the DELETE reached the server");
        assert!(
            deleted
                .failure
                .as_deref()
                .is_some_and(|f| f.contains("PreflightMissingAllowOriginHeader")),
            "{deleted:#?}"
        );
        // The simple POSTs reach the server, and it refuses them.
        for (url, mode) in [(&create, "no-cors"), (&rotate, "navigate")] {
            let post = one(&seen, url, |e| e.method == "POST" && &e.url == url);
            assert_eq!(post.status, Some(403), "{post:#?}");
            assert_eq!(post.header("origin"), Some(origin.as_str()));
            assert_eq!(post.header("sec-fetch-site"), fetch_site);
            assert_eq!(
                post.header("sec-fetch-mode"),
                sites.fetch_metadata.then_some(mode)
            );
            assert_eq!(
                post.sent_cookie("session"),
                cookie_sent,
                "{}",
                post.summary()
            );
            if !cookie_sent {
                let reasons = post.withheld("session");
                assert!(
                    reasons.iter().any(|r| r.contains("SameSiteLax")),
                    "{reasons:?}"
                );
            }
        }
    }
}

/// A page on another site, and one on a sibling subdomain, try to mint, rotate and
/// revoke keys with the victim's session in a real browser (the quickstart over
/// real HTTP). All refused, nothing changes; the same requests from the victim's own
/// origin succeed (so the refusals are the origin's doing, not a malformed request).
///
/// What each layer contributes, as the browser's own network log shows it:
/// - cross-site (`attacker.localhost`): Chromium withholds the `SameSite=Lax` session
///   cookie from the cross-site `POST`s, and the server answers 403 anyway, on
///   `Sec-Fetch-Site: cross-site`, before it looks for a session;
/// - same-site (`evil.example.localhost`): `SameSite=Lax` does not apply (same site),
///   so the cookie *is* sent, and the cross-origin rule alone refuses: 403 on
///   `Sec-Fetch-Site: same-site`;
/// - the `fetch` `DELETE` never leaves the browser: a non-simple method needs a CORS
///   preflight, which the server does not grant (405, no `Access-Control-Allow-*`).
///   `delete_through_a_cors_hole_is_still_refused` takes that layer away;
/// - over plain http to the `*.test` names, Chromium sends no `Sec-Fetch-*` at all:
///   the `Origin` rule refuses (the attacker's origin is not the server's host).
#[tokio::test]
async fn cross_site_and_same_site_attacks_are_refused() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let qs = Arc::new(quickstart::start().await);
    let port = qs.base.rsplit(':').next().expect("a port").to_owned();
    let cookie = qs.login().await;
    let before = account_state(&qs, &cookie).await;
    let target = before.named["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "full access")
        .expect("the demo key")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(before.one_active["id"], target.as_str());
    let mut families = Vec::new();
    for sites in [LOOPBACK, PLAIN_HTTP] {
        let victim = format!("http://{}:{port}", sites.victim);
        let attacker = Attacker::start(&victim, &target).await;
        families.push((sites, victim, attacker));
    }

    with_browser(&chromium, &chromedriver, move |b| async move {
        for (sites, victim, attacker) in &families {
            b.client.goto(&format!("{victim}/health")).await.unwrap();
            assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
            b.network_events().await;
            attack(&b, *sites, victim, attacker, &target).await;
        }

        // Nothing changed: no key planted, none rotated or revoked, the key works.
        assert_eq!(account_state(&qs, &cookie).await, before);
        assert_eq!(qs.account_status(&qs.full).await, StatusCode::OK);

        // Control: the same requests from the victim's own origin succeed, with
        // fetch metadata (`same-origin`) and without (`Origin` is the server's host).
        for (sites, victim, _) in families.iter().rev() {
            b.client.goto(&format!("{victim}/health")).await.unwrap();
            b.network_events().await;
            let own = b
                .js_async(
                    r#"const done = arguments[arguments.length - 1];
(async () => {
  const made = await fetch("/api/user/keys", { method: "POST", mode: "no-cors",
    credentials: "include", headers: { "content-type": "text/plain" },
    body: JSON.stringify({ name: "made by the owner" }) });
  const id = (await made.json()).id;
  const gone = await fetch("/api/user/keys/" + id, { method: "DELETE", credentials: "include" });
  return { create: made.status, delete: gone.status };
})().then(done, e => done(String(e)));"#,
                    vec![],
                )
                .await;
            assert_eq!(own, json!({ "create": 201, "delete": 200 }), "{sites:?}");
            let all = network::exchanges(&b.network_events().await);
            for exchange in all.iter().filter(|e| e.url.starts_with(victim.as_str())) {
                eprintln!("victim's own page -> victim: {}", exchange.summary());
                let fetch_site = sites.fetch_metadata.then_some("same-origin");
                assert_eq!(exchange.header("sec-fetch-site"), fetch_site);
                assert_eq!(exchange.header("origin"), Some(victim.as_str()));
                assert!(exchange.sent_cookie("session"));
            }
        }
        // The victim's page is now the loopback family's.
        let victim = &families[0].1;
        b.network_events().await;
        b.js(
            r#"const form = document.createElement("form");
form.method = "post";
form.action = "/api/v1/partners/api-key/rotate";
document.body.append(form);
form.submit();"#,
            vec![],
        )
        .await;
        let rotate = format!("{victim}/api/v1/partners/api-key/rotate");
        let rotated: Value =
            serde_json::from_str(&page_text_at(&b, &rotate).await).expect("a JSON answer");
        assert!(
            rotated["api_key"].is_string(),
            "the owner's rotation answers the new key"
        );
        let all = network::exchanges(&b.network_events().await);
        let seen: Vec<&Exchange> = all
            .iter()
            .filter(|e| e.url.starts_with(victim.as_str()))
            .collect();
        assert_eq!(seen.len(), 1, "{seen:#?}");
        for exchange in &seen {
            eprintln!("victim's own page -> victim: {}", exchange.summary());
            assert!(exchange.status.is_some_and(|s| s < 300), "{exchange:#?}");
            assert_eq!(exchange.header("sec-fetch-site"), Some("same-origin"));
            assert!(exchange.sent_cookie("session"));
        }
        assert_eq!(
            qs.account_status(&qs.full).await,
            StatusCode::UNAUTHORIZED,
            "the form the attacker sent would have retired the key at once"
        );
    })
    .await;
}

/// A victim that made a CORS mistake: it lets the attackers' origins send
/// credentialed non-simple requests and read the answers. The browser now sends the
/// `DELETE` (its preflight is granted), and the session guard's cross-origin rule
/// still refuses it, visibly to the attacker: 403. The key is not revoked.
#[tokio::test]
async fn delete_through_a_cors_hole_is_still_refused() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let record = KeyRecord::builder(&key, "demo").name("target").build();
    let target = record.id.to_string();
    store
        .insert(record, InsertRule::Unconditional)
        .await
        .expect("insert");
    let sessions = CookieSessions::with_random_key()
        .expect("session key")
        .insecure_for_local_http();
    let auth = Authenticator::new(store.clone());
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|origin: &HeaderValue, _| {
            let origin = origin.as_bytes();
            origin.starts_with(format!("http://{}:", LOOPBACK.cross_site).as_bytes())
                || origin.starts_with(format!("http://{}:", LOOPBACK.same_site).as_bytes())
        }))
        .allow_credentials(true)
        .allow_methods([Method::DELETE, Method::POST])
        .allow_headers([http::header::CONTENT_TYPE]);
    let login_sessions = sessions.clone();
    let app = Router::new()
        .route("/", axum::routing::get(|| async { "the victim" }))
        .route(
            "/login",
            post(move || async move {
                let cookie = login_sessions.login(&SessionUser::new("demo"));
                ([(SET_COOKIE, cookie)], "logged in")
            }),
        )
        .merge(manage::router(
            Keys::new(store.clone()),
            SessionGuardLayer::new(sessions),
            auth,
        ))
        .layer(cors);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the victim");
    let victim = format!(
        "http://{}:{}",
        LOOPBACK.victim,
        listener.local_addr().unwrap().port()
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("victim") });
    let attacker = Attacker::start(&victim, &target).await;

    let check_store = store.clone();
    with_browser(&chromium, &chromedriver, move |b| async move {
        b.client.goto(&format!("{victim}/")).await.unwrap();
        assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
        b.network_events().await;
        let delete = format!("{victim}/api/user/keys/{target}");
        let scenarios = [
            (LOOPBACK.cross_site, "cross-site", false),
            (LOOPBACK.same_site, "same-site", true),
        ];
        for (n, (host, site, cookie_sent)) in scenarios.into_iter().enumerate() {
            let origin = format!("http://{host}:{}", attacker.port);
            b.client.goto(&format!("{origin}/fetch")).await.unwrap();
            let report = attacker.report(n + 1).await;
            eprintln!("{site} attacker's page saw (CORS hole): {report:?}");
            assert_eq!(report[0]["outcome"], "answered", "{report:?}");
            assert_eq!(report[0]["status"], 403, "{report:?}");
            let body: Value = serde_json::from_str(report[0]["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "forbidden");

            let all = network::exchanges(&b.network_events().await);
            let seen: Vec<&Exchange> = all.iter().filter(|e| e.url.starts_with(&victim)).collect();
            for exchange in &seen {
                eprintln!(
                    "{site} attacker -> victim with a CORS hole: {}",
                    exchange.summary()
                );
            }
            let preflight = one(&seen, "DELETE preflight", |e| {
                e.preflight && e.url == delete
            });
            assert_eq!(preflight.status, Some(200), "the preflight is granted");
            let sent = one(&seen, "DELETE", |e| !e.preflight && e.method == "DELETE");
            assert_eq!(sent.status, Some(403), "{sent:#?}");
            assert_eq!(sent.header("origin"), Some(origin.as_str()));
            assert_eq!(sent.header("sec-fetch-site"), Some(site));
            assert_eq!(sent.header("sec-fetch-mode"), Some("cors"));
            assert_eq!(
                sent.sent_cookie("session"),
                cookie_sent,
                "{}",
                sent.summary()
            );
        }
        let keys = check_store.list_by_owner("demo").await.expect("list");
        assert_eq!(keys.len(), 1, "nothing planted");
        assert!(keys[0].revoked_at.is_none(), "the key was revoked");
        // Control: the victim's own page can revoke it.
        b.client.goto(&format!("{victim}/")).await.unwrap();
        let own = b
            .js_async(
                r#"const done = arguments[arguments.length - 1];
fetch(arguments[0], { method: "DELETE", credentials: "include" })
  .then(r => done(r.status), e => done(String(e)));"#,
                vec![json!(delete)],
            )
            .await;
        assert_eq!(own, json!(200));
    })
    .await;
    let keys = store.list_by_owner("demo").await.expect("list");
    assert!(keys[0].revoked_at.is_some(), "the owner revoked it");
    server.abort();
}
