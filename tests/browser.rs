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
//! `dashboard_flow` uses the key dashboard as a person would, against the quickstart
//! at `http://127.0.0.1:<port>` (loopback: a secure context, so the clipboard API
//! works once the test grants its permission).
//!
//! Screenshots of each state go to `target/screenshots/` (not committed);
//! `docs/dashboard.png` is `dashboard-4-generated.png` from one run (a throwaway key of
//! an in-memory store).

#[path = "browser/app.rs"]
mod app;
#[path = "browser/attacker.rs"]
mod attacker;
mod common;
#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/network.rs"]
mod network;

use std::{sync::Arc, time::Duration};

use app::App;
use attacker::Attacker;
use axum::{routing::post, Router};
use common::quickstart::{self, Quickstart};
use driver::{with_browser, Browser};
use http::{header::SET_COOKIE, HeaderValue, Method, StatusCode};
use network::Exchange;
use serde_json::{json, Value};
use tower_api_key::{
    manage::{self, Caller, HookError, KeyEvent, KeyHooks, Keys, LeakAction, LeakReport},
    policy::{RateLimit, Restrictions},
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

/// Polls `script` (a function body run in the page) until it returns something other
/// than `null`, `false` or `""` (10 s at most); that value. A script that fails (the
/// page is navigating) counts as not yet.
async fn until(b: &Browser, what: &str, script: &str, args: Vec<Value>) -> Value {
    for _ in 0..200 {
        if let Ok(value) = b.client.execute(script, args.clone()).await {
            if !matches!(&value, Value::Null | Value::Bool(false)) && value.as_str() != Some("") {
                return value;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

/// The trimmed text of the element `selector`, or `null` if there is none.
const TEXT_OF: &str = r#"const el = document.querySelector(arguments[0]);
return el ? el.textContent.trim() : null;"#;

/// The trimmed text of `selector` once it contains `needle`.
async fn text_containing(b: &Browser, selector: &str, needle: &str) -> String {
    let script = format!(
        "{TEXT_OF_FN} const t = textOf(arguments[0]); return t !== null && t.includes(arguments[1]) ? t : null;"
    );
    until(
        b,
        &format!("{selector} to contain {needle:?}"),
        &script,
        vec![json!(selector), json!(needle)],
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

const TEXT_OF_FN: &str = r#"function textOf(s) { const el = document.querySelector(s); return el ? el.textContent.trim() : null; }"#;

/// Scrolls the element `selector` to the middle of the window (for a screenshot).
async fn scroll_to(b: &Browser, selector: &str) {
    b.js(
        "document.querySelector(arguments[0]).scrollIntoView({ block: 'center' });",
        vec![json!(selector)],
    )
    .await;
}

/// The raw key in the new-key box, once one is shown.
async fn shown_key(b: &Browser) -> String {
    let key = until(
        b,
        "#new-key-value",
        r#"const el = document.querySelector('#new-key-value'); return el && el.value;"#,
        vec![],
    )
    .await;
    key.as_str().unwrap().to_owned()
}

/// Clicks Generate once it is enabled (the page has seen that no key is active).
async fn click_generate(b: &Browser) {
    until(
        b,
        "Generate enabled",
        "return !document.querySelector('#generate').disabled;",
        vec![],
    )
    .await;
    click(b, "#generate").await;
}

async fn click(b: &Browser, selector: &str) {
    b.client
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

async fn fill(b: &Browser, selector: &str, text: &str) {
    let field = b
        .client
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Whether the page (its DOM, storage or address) holds `secret` anywhere.
async fn page_holds(b: &Browser, secret: &str) -> bool {
    let source = b.client.source().await.expect("page source");
    let elsewhere = b
        .js(
            r#"const s = arguments[0];
const values = [...document.querySelectorAll("input, textarea")].map(e => e.value);
return [JSON.stringify(localStorage), JSON.stringify(sessionStorage), location.href,
  document.cookie, ...values].some(v => v.includes(s));"#,
            vec![json!(secret)],
        )
        .await;
    source.contains(secret) || elsewhere == json!(true)
}

/// Clicks a button that opens `#confirm-dialog`, checks the dialog, and confirms.
async fn confirm(b: &Browser, opener: &str, shot: Option<&str>) {
    click(b, opener).await;
    until(
        b,
        "the confirm dialog",
        r#"const d = document.querySelector('#confirm-dialog'); return d && d.open;"#,
        vec![],
    )
    .await;
    let text = b.js(TEXT_OF, vec![json!("#confirm-text")]).await;
    assert!(
        text.as_str().is_some_and(|t| !t.is_empty()),
        "the dialog says what it will do"
    );
    if let Some(name) = shot {
        b.screenshot(name).await;
    }
    click(b, "#confirm-yes").await;
}

/// The selector of the table row of `key` (a raw key or its prefix).
fn row_of(key: &str) -> String {
    format!("#keys-table tr[data-prefix='{}']", &key[..24])
}

/// Clicks the row's Rotate, picks the grace period (seconds) in the dialog, confirms.
async fn rotate_row(b: &Browser, row: &str, grace: &str) {
    click(b, &format!("{row} .rotate-key")).await;
    until(
        b,
        "the rotate dialog",
        r#"const d = document.querySelector('#confirm-dialog');
return d && d.open && !document.querySelector('#confirm-grace-row').hidden;"#,
        vec![],
    )
    .await;
    b.client
        .find(fantoccini::Locator::Id("confirm-grace"))
        .await
        .unwrap()
        .select_by_value(grace)
        .await
        .unwrap();
    click(b, "#confirm-yes").await;
}

/// What a row shows: its class, its text, and the buttons it has.
async fn row_state(b: &Browser, row: &str) -> Value {
    until(
        b,
        row,
        r#"const tr = document.querySelector(arguments[0]);
return tr && { class: tr.className, text: tr.textContent,
  buttons: [...tr.querySelectorAll('button')].map(x => x.textContent) };"#,
        vec![json!(row)],
    )
    .await
}

/// The dashboard as a person uses it, in a real browser against the quickstart (both
/// shapes mounted: one table of every key): sent to the login form, a wrong password,
/// log in; revoke the seeded key from its row (it gets 401, the row stays, Revoked);
/// create a key, see it once and copy it, use it with a real HTTP client (200);
/// reload: only the prefix, and its last use; rotate it from its row with no grace
/// (the old key 401, the new 200); revoke that (401); an error shown from the server's
/// envelope. No console errors (no CSP violation), no raw key in storage, in the
/// address or in the server's logs.
#[tokio::test]
async fn dashboard_flow() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let qs = Arc::new(quickstart::start().await);
    with_browser(&chromium, &chromedriver, move |b| async move {
        let base = qs.base.clone();
        let page = format!("{base}/settings/api-keys");

        // Not logged in: a browser is sent to the login form.
        b.client.goto(&page).await.unwrap();
        let here = b.client.current_url().await.unwrap();
        assert_eq!(here.path(), "/login", "{here}");
        let next: Vec<_> = here
            .query_pairs()
            .filter(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(next, ["/settings/api-keys"], "{here}");
        b.screenshot("dashboard-0-login").await;

        // A wrong password: back to the form, with a message.
        fill(&b, "#username", "demo").await;
        fill(&b, "#password", "not the password").await;
        click(&b, "#login-submit").await;
        let message = until(
            &b,
            "#login-error",
            &format!("{TEXT_OF_FN} return textOf('#login-error');"),
            vec![],
        )
        .await;
        eprintln!("wrong password: {message}");
        let here = b.client.current_url().await.unwrap();
        assert!(
            here.query_pairs().any(|(k, v)| k == "error" && v == "1"),
            "{here}"
        );
        b.screenshot("dashboard-1-login-error").await;

        // Log in: the dashboard's one table, with the seeded key's row.
        fill(&b, "#username", "demo").await;
        fill(&b, "#password", "demo").await;
        click(&b, "#login-submit").await;
        let seeded = row_of(&qs.full);
        let text = text_containing(&b, &seeded, "full access").await;
        assert!(text.contains("Active"), "{text}");
        assert_eq!(b.client.current_url().await.unwrap().path(), "/settings/api-keys");
        assert_eq!(
            b.js("return document.querySelector('#one-active').hidden;", vec![])
                .await,
            json!(true),
            "with the named shape mounted, no one-active card"
        );
        b.screenshot("dashboard-2-keys").await;

        // Revoke the seeded key from its row: it stops working, the row stays.
        confirm(&b, &format!("{seeded} .revoke-key"), Some("dashboard-3-confirm")).await;
        text_containing(&b, &seeded, "Revoked").await;
        assert_eq!(
            qs.account_status(&qs.full).await,
            StatusCode::UNAUTHORIZED,
            "revoked from the dashboard"
        );

        // Create a key: it is shown once, in the box.
        fill(&b, "#named-name", "ci deploy").await;
        fill(&b, "#named-scopes", "account:read").await;
        click(&b, "#named-create").await;
        let key = shown_key(&b).await;
        assert!(
            key.starts_with("pk_live_") && key.len() == 72,
            "a raw key in the box"
        );
        assert!(b
            .client
            .find(fantoccini::Locator::Id("new-key"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap());
        text_containing(&b, "body", "Save it now: it is shown only once").await;
        let row = row_of(&key);
        let text = text_containing(&b, &row, "Active").await;
        assert!(text.contains("ci deploy"), "{text}");
        assert!(text.contains("account:read"), "{text}");
        let shot = b.screenshot("dashboard-4-generated").await;
        eprintln!("screenshot with the new key: {}", shot.display());

        // Copy: the clipboard holds the key.
        b.cdp(
            "Browser.grantPermissions",
            json!({
                "origin": base,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            }),
        )
        .await;
        click(&b, "#copy").await;
        text_containing(&b, "#copy-status", "Copied").await;
        let clipboard = b
            .js_async(
                r#"const done = arguments[arguments.length - 1];
navigator.clipboard.readText().then(done, e => done({ error: String(e) }));"#,
                vec![],
            )
            .await;
        assert!(
            clipboard.as_str() == Some(key.as_str()),
            "the clipboard does not hold the key (error: {})",
            clipboard["error"]
        );
        b.screenshot("dashboard-5-copied").await;

        // Use it with a real HTTP client.
        assert_eq!(qs.account_status(&key).await, StatusCode::OK);

        // Reload: only the prefix; the raw key is nowhere in the page.
        b.client.refresh().await.unwrap();
        text_containing(&b, &row, "ci deploy").await;
        let shown = b
            .js(
                r#"const el = document.querySelector('#new-key-value'); return el ? el.value : "";"#,
                vec![],
            )
            .await;
        assert_eq!(shown, json!(""), "the box is empty after a reload");
        assert!(!page_holds(&b, &key[24..]).await, "the secret survived a reload");
        let last_used = b
            .js(TEXT_OF, vec![json!(format!("{row} td:nth-child(4)"))])
            .await;
        assert!(
            last_used.as_str().is_some_and(|t| !t.is_empty() && t != "never"),
            "the use shows: {last_used}"
        );
        b.screenshot("dashboard-6-after-reload").await;

        // Rotate from the row with no grace: a new key in the box, the old one stops
        // at once.
        rotate_row(&b, &row, "0").await;
        let rotated = until(
            &b,
            "the rotated key",
            r#"const el = document.querySelector('#new-key-value');
return el && el.value && el.value !== arguments[0] ? el.value : null;"#,
            vec![json!(key)],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
        assert_eq!(qs.account_status(&rotated).await, StatusCode::OK);
        assert_eq!(qs.account_status(&key).await, StatusCode::UNAUTHORIZED);
        let successor = row_of(&rotated);
        let text = text_containing(&b, &successor, "Active").await;
        assert!(text.contains("ci deploy") && text.contains("account:read"), "{text}");

        // Revoke it from its row: the key gets 401, the row says so.
        confirm(&b, &format!("{successor} .revoke-key"), None).await;
        text_containing(&b, &successor, "Revoked").await;
        assert_eq!(
            qs.account_status(&rotated).await,
            StatusCode::UNAUTHORIZED
        );
        scroll_to(&b, &successor).await;
        b.screenshot("dashboard-7-revoked").await;

        // An error from the server shows its envelope's message.
        fill(&b, "#named-name", "expired already").await;
        b.js(
            r#"document.querySelector('#named-expires').value = "2000-01-01";"#,
            vec![],
        )
        .await;
        click(&b, "#named-create").await;
        let error = until(
            &b,
            "#error",
            &format!("{TEXT_OF_FN} return textOf('#error');"),
            vec![],
        )
        .await;
        eprintln!("error shown: {error}");
        scroll_to(&b, "#error").await;
        b.screenshot("dashboard-10-error").await;

        // No console errors: the page runs under its CSP without a violation or a
        // script error. Chromium logs each 4xx answer as a failed load: the refused
        // expiry above is one, an API answer, not a fault.
        let console = b.console().await;
        for (level, message) in &console {
            eprintln!("console {level}: {message}");
        }
        let faults: Vec<_> = console
            .iter()
            .filter(|(level, m)| {
                level == "SEVERE"
                    && !(m.contains("Failed to load resource")
                        && m.contains("the server responded with a status of 4"))
            })
            .collect();
        assert!(faults.is_empty(), "console errors: {faults:#?}");

        // After a reload no raw key is anywhere in the page.
        b.client.refresh().await.unwrap();
        text_containing(&b, &successor, "Revoked").await;
        for secret in [&key, &rotated] {
            assert!(!page_holds(&b, &secret[24..]).await, "a secret in the page");
        }
        let logs = qs.logs.lock().unwrap().join("\n");
        for secret in [&key, &rotated] {
            assert!(!logs.contains(&secret[24..]), "a secret in the server's logs");
        }
    })
    .await;
}

/// A webhook service that is down (it answers 503), as the quickstart's
/// `WEBHOOK_URL` hook calls it: the bodies it was sent.
async fn failing_webhook() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = Router::new().route(
        "/keys",
        post(move |body: String| async move {
            seen.lock().unwrap().push(body);
            StatusCode::SERVICE_UNAVAILABLE
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

/// A create hook that fails (the seeds' webhook app): the key is minted and works, the
/// page warns at once and, after a reload, still shows the failure next to the key
/// (kept in its metadata) in the table (the one-active card shows it too:
/// `the_one_active_card_acts_only_on_the_key_it_shows`); the webhook got the key's
/// public view, and the server's log the prefix, never the raw key.
#[tokio::test]
async fn a_failed_hook_is_shown_when_minted_and_after_a_reload() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let (webhook, bodies) = failing_webhook().await;
    let qs = Arc::new(quickstart::start_with(&[("WEBHOOK_URL", &webhook)]).await);
    with_browser(&chromium, &chromedriver, move |b| async move {
        let page = format!("{}/settings/api-keys", qs.base);
        b.client.goto(&format!("{}/login", qs.base)).await.unwrap();
        assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
        b.client.goto(&page).await.unwrap();

        fill(&b, "#named-name", "zapier").await;
        click(&b, "#named-create").await;
        let key = shown_key(&b).await;
        let failure = "webhook failed: The webhook app could not be created.";
        let warning = text_containing(&b, "#new-key-warnings", failure).await;
        assert!(warning.contains("The key works"), "{warning}");
        assert_eq!(
            qs.account_status(&key).await,
            StatusCode::OK,
            "minted all the same"
        );

        b.client.refresh().await.unwrap();
        let row = row_of(&key);
        let text = text_containing(&b, &row, failure).await;
        assert!(text.contains("Active"), "{text}");
        scroll_to(&b, &row).await;
        b.screenshot("dashboard-11-hook-failure").await;
        assert!(
            !page_holds(&b, &key[24..]).await,
            "the secret survived a reload"
        );

        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1, "a POST to the webhook per key: {bodies:?}");
        let event: Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(event["action"], "created");
        assert_eq!(event["key"]["prefix"], json!(&key[..24]));
        assert!(
            !bodies[0].contains(&key[24..]),
            "the webhook got the raw key"
        );
        let logs = qs.logs.lock().unwrap().join("\n");
        let logged = logs
            .lines()
            .find(|line| line.contains("API key hook failed"))
            .unwrap_or_else(|| panic!("the failure was not logged:\n{logs}"));
        assert!(
            logged.contains(&key[..24]),
            "logged with the prefix: {logged}"
        );
        assert!(!logs.contains(&key[24..]), "a secret in the server's logs");
    })
    .await;
}

/// Logs the browser in to `app` and opens its dashboard (the console holds only what
/// the dashboard's load logged).
async fn open_dashboard(b: &Browser, app: &App) {
    b.client
        .goto(&format!("{}/health", app.base))
        .await
        .unwrap();
    assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
    b.console().await;
    b.client
        .goto(&format!("{}/settings/api-keys", app.base))
        .await
        .unwrap();
}

/// A key of `demo`'s, named `name`, made `age` ago (the one-active view shows the
/// newest working key); with `bounded`, within [`loopback_bounds`] and 100 requests
/// per 10 s.
fn demo_key(name: &str, age: Duration, bounded: bool) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate(KeyMode::Live).expect("mint");
    let mut record = KeyRecord::builder(&key, "demo")
        .name(name)
        .scopes(["account:read"])
        .created_at(std::time::SystemTime::now() - age);
    if bounded {
        record = record
            .restrictions(loopback_bounds())
            .rate_limit("100/10s".parse::<RateLimit>().unwrap());
    }
    (key, record.build())
}

/// Bounds that a request from loopback meets: two address ranges, a route, a rate.
fn loopback_bounds() -> Restrictions {
    Restrictions::default()
        .allow_ip("127.0.0.0/8".parse().unwrap())
        .allow_ip("203.0.113.0/24".parse().unwrap())
        .allow_route("GET /api/*".parse().unwrap())
}

const BOUNDS_SHOWN: [&str; 3] = [
    "Limited to 127.0.0.0/8, 203.0.113.0/24",
    "Only GET /api/*",
    "100 requests / 10 s",
];

/// Finding (issue 14 §6): with both shapes mounted, the page showed a named key as
/// "Your API key", and the one-active card's Revoke revoked every key of the account,
/// named CI keys included. Now the page shows one table of every key (the seeded
/// one, a named CI key, a key minted through the one-active endpoint) and no
/// one-active card; revoking one row leaves the other keys working (200).
#[tokio::test]
async fn revoking_one_row_leaves_the_other_keys_working() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let qs = Arc::new(quickstart::start().await);
    let cookie = qs.login().await;
    let (_, ci) = qs.mint_named(&cookie, "ci").await;
    let one = qs
        .send_with(
            Method::POST,
            "/api/v1/partners/api-key",
            &[("cookie", &cookie)],
            "",
        )
        .await;
    // The seeded key is active: the one-active shape refuses a second one.
    assert_eq!(one.status, StatusCode::CONFLICT, "{}", one.body);
    with_browser(&chromium, &chromedriver, move |b| async move {
        b.client.goto(&format!("{}/health", qs.base)).await.unwrap();
        assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
        b.client
            .goto(&format!("{}/settings/api-keys", qs.base))
            .await
            .unwrap();
        let ci_row = row_of(&ci);
        let seeded = row_of(&qs.full);
        text_containing(&b, &ci_row, "ci").await;
        text_containing(&b, &seeded, "full access").await;
        assert_eq!(
            b.js(
                "return [document.querySelector('#one-active').hidden, \
                 document.querySelectorAll('#keys-table tbody tr[data-key-id]').length];",
                vec![]
            )
            .await,
            json!([true, 2]),
            "one table of both keys, no one-active card"
        );
        for row in [&ci_row, &seeded] {
            assert_eq!(
                row_state(&b, row).await["buttons"],
                json!(["Usage", "Rotate", "Revoke"]),
                "{row}"
            );
        }
        b.screenshot("one-list-1-two-keys").await;

        confirm(&b, &format!("{ci_row} .revoke-key"), None).await;
        text_containing(&b, &ci_row, "Revoked").await;
        assert_eq!(qs.account_status(&ci).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            qs.account_status(&qs.full).await,
            StatusCode::OK,
            "the other key still works"
        );
        let text = text_containing(&b, &seeded, "Active").await;
        assert!(!text.contains("Revoked"), "{text}");
        b.screenshot("one-list-2-one-revoked").await;
    })
    .await;
}

/// Finding (issue 14 §6): a revoked row showed "Revoked" until a reload, then
/// vanished. Now it stays, greyed, with status Revoked and only its Usage button (its history stays readable), right after
/// the click and after a reload alike (the list keeps revoked keys for 7 days); the
/// other key keeps working.
#[tokio::test]
async fn a_revoked_row_stays_revoked_across_reloads() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let app = Arc::new(App::start(store.clone(), Keys::new(store), |routes| routes).await);
    let (ci, record) = demo_key("ci", Duration::from_secs(60), false);
    app.seed(record).await;
    let (laptop, record) = demo_key("laptop", Duration::from_secs(30), false);
    app.seed(record).await;
    with_browser(&chromium, &chromedriver, move |b| async move {
        open_dashboard(&b, &app).await;
        let row = row_of(ci.expose_secret());
        text_containing(&b, &row, "Active").await;
        confirm(&b, &format!("{row} .revoke-key"), None).await;
        text_containing(&b, &row, "Revoked").await;
        let revoked = json!({ "class": "key-gone", "buttons": ["Usage"] });
        let seen = row_state(&b, &row).await;
        assert_eq!(
            json!({ "class": seen["class"], "buttons": seen["buttons"] }),
            revoked,
            "{seen}"
        );
        scroll_to(&b, &row).await;
        b.screenshot("revoked-row-1-after-click").await;
        assert_eq!(app.status(&ci).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.status(&laptop).await, StatusCode::OK);

        b.client.refresh().await.unwrap();
        text_containing(&b, &row, "Revoked").await;
        let seen = row_state(&b, &row).await;
        assert_eq!(
            json!({ "class": seen["class"], "buttons": seen["buttons"] }),
            revoked,
            "after a reload: {seen}"
        );
        let other = row_state(&b, &row_of(laptop.expose_secret())).await;
        assert_eq!(
            other["buttons"],
            json!(["Usage", "Rotate", "Revoke"]),
            "{other}"
        );
        b.screenshot("revoked-row-2-after-reload").await;
    })
    .await;
}

/// Issue 18 §2: a key a secret scanner reported (flagged, not revoked) carries the
/// report on its row, the URL shown as text (a scanner's URL is not markup).
#[tokio::test]
async fn a_key_reported_leaked_shows_the_report_on_its_row() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let keys = Keys::new(store.clone());
    let app = Arc::new(App::start(store.clone(), keys.clone(), |routes| routes).await);
    let (ci, record) = demo_key("ci", Duration::from_secs(60), false);
    app.seed(record).await;
    let url = "https://github.com/octo/app/blob/main/.env?<b>x</b>";
    let report = LeakReport::new("github").url(url);
    let verdict = keys
        .report_leak(ci.expose_secret(), &report, LeakAction::Flag)
        .await
        .unwrap();
    assert_eq!(verdict, manage::LeakVerdict::TruePositive);
    with_browser(&chromium, &chromedriver, move |b| async move {
        open_dashboard(&b, &app).await;
        let row = row_of(ci.expose_secret());
        let text = text_containing(&b, &row, "Reported leaked on").await;
        assert!(text.contains(url), "the URL as text: {text}");
        assert!(text.contains("Active"), "flagged, still working: {text}");
        let bold = b
            .js("return document.querySelectorAll('b').length;", vec![])
            .await;
        assert_eq!(bold, json!(0), "the scanner's URL was not parsed as markup");
        scroll_to(&b, &row).await;
        b.screenshot("leak-reported-row").await;
        assert_eq!(app.status(&ci).await, StatusCode::OK);
    })
    .await;
}

/// Finding (issue 18's closing note): with the named-keys routes in the compact
/// format (`NamedKeysApi::Compact`) the dashboard's table stayed empty. The page now
/// asks for the detailed answers: the seeded key shows on its row, a key created from
/// the form is shown once and works, and revoking a row stops that key only.
#[tokio::test]
async fn the_dashboard_works_over_the_compact_format() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let app = Arc::new(
        App::start(store.clone(), Keys::new(store), |routes| {
            routes.named_api(manage::NamedKeysApi::Compact)
        })
        .await,
    );
    let (ci, record) = demo_key("ci", Duration::from_secs(60), false);
    app.seed(record).await;
    with_browser(&chromium, &chromedriver, move |b| async move {
        open_dashboard(&b, &app).await;
        let seeded = row_of(ci.expose_secret());
        let text = text_containing(&b, &seeded, "Active").await;
        assert!(text.contains("ci"), "{text}");

        fill(&b, "#named-name", "deploy").await;
        click(&b, "#named-create").await;
        let key = shown_key(&b).await;
        let row = row_of(&key);
        let text = text_containing(&b, &row, "Active").await;
        assert!(text.contains("deploy"), "{text}");
        assert_eq!(app.status_of(&key).await, StatusCode::OK);

        confirm(&b, &format!("{seeded} .revoke-key"), None).await;
        text_containing(&b, &seeded, "Revoked").await;
        assert_eq!(app.status(&ci).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.status_of(&key).await,
            StatusCode::OK,
            "the other key works"
        );
        b.screenshot("compact-format-dashboard").await;
        let errors: Vec<_> = b
            .console()
            .await
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .collect();
        assert!(errors.is_empty(), "no console errors: {errors:?}");
    })
    .await;
}

/// Finding (issue 14 §6): every load with no active key logged a red "404 (Not
/// Found)" (the page's status read was the one-active `GET`). A load with no key now
/// logs nothing at all, with the one-active shape alone (the page's own status read
/// answers 200 `{"key":null}`) and with both shapes (the named list, 200).
#[tokio::test]
async fn a_load_with_no_key_logs_no_console_error() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let alone = Arc::new(
        App::start(store.clone(), Keys::new(store), |routes| {
            routes.named_path(None)
        })
        .await,
    );
    let store = InMemoryKeyStore::new();
    let both = Arc::new(App::start(store.clone(), Keys::new(store), |routes| routes).await);
    with_browser(&chromium, &chromedriver, move |b| async move {
        for (app, selector, empty, shot) in [
            (&alone, "#key-status", "No key", "no-key-one-active"),
            (&both, "#keys-empty", "No keys yet.", "no-key-table"),
        ] {
            open_dashboard(&b, app).await;
            let before = b.console().await;
            let shown = until(
                &b,
                empty,
                &format!(
                    "{TEXT_OF_FN} const el = document.querySelector(arguments[0]); \
                     return el && !el.hidden && textOf(arguments[0]);"
                ),
                vec![json!(selector)],
            )
            .await;
            assert_eq!(shown, json!(empty));
            // Let any late request finish before reading the console.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut console = before;
            console.extend(b.console().await);
            for (level, message) in &console {
                eprintln!("{shot} console {level}: {message}");
            }
            let errors: Vec<_> = console
                .iter()
                .filter(|(level, _)| level == "SEVERE")
                .collect();
            assert!(errors.is_empty(), "{shot}: console errors: {errors:#?}");
            b.screenshot(shot).await;
        }
    })
    .await;
}

/// Restrictions and a rate limit seeded through the store show in the key's row as
/// text ("Limited to …", "100 requests / 10 s"), an unbounded key says "none", and
/// the successor of a rotation from the row shows the same bounds.
#[tokio::test]
async fn the_table_shows_each_keys_bounds_and_a_rotation_keeps_them() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let app = Arc::new(App::start(store.clone(), Keys::new(store), |routes| routes).await);
    let (bounded, record) = demo_key("<b>partner</b>", Duration::from_secs(60), true);
    app.seed(record).await;
    let (plain, record) = demo_key("plain", Duration::from_secs(30), false);
    app.seed(record).await;
    with_browser(&chromium, &chromedriver, move |b| async move {
        open_dashboard(&b, &app).await;
        let row = row_of(bounded.expose_secret());
        let text = text_containing(&b, &row, BOUNDS_SHOWN[2]).await;
        for bound in BOUNDS_SHOWN {
            assert!(text.contains(bound), "{bound}: {text}");
        }
        assert!(text.contains("<b>partner</b>"), "names are text: {text}");
        let limits = b
            .js(
                TEXT_OF,
                vec![json!(format!(
                    "{}  td:nth-child(8)",
                    row_of(plain.expose_secret())
                ))],
            )
            .await;
        assert_eq!(limits, json!("none"));
        b.screenshot("bounds-1-table").await;

        rotate_row(&b, &row, "3600").await;
        let successor = shown_key(&b).await;
        let text = text_containing(&b, &row_of(&successor), BOUNDS_SHOWN[2]).await;
        for bound in BOUNDS_SHOWN {
            assert!(text.contains(bound), "the successor: {bound}: {text}");
        }
        text_containing(&b, &row, "Retiring").await;
        assert_eq!(app.status_of(&successor).await, StatusCode::OK);
        assert_eq!(
            app.status(&bounded).await,
            StatusCode::OK,
            "in its grace period"
        );
        scroll_to(&b, "#keys-table").await;
        b.screenshot("bounds-2-rotated").await;
    })
    .await;
}

/// A create hook that always fails.
struct FailingHook;

#[async_trait::async_trait]
impl KeyHooks for FailingHook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn after_create(&self, _: &KeyEvent) -> Result<(), HookError> {
        Err(HookError::new("The webhook app could not be created."))
    }
}

/// The one-active shape alone: its card. Every rotate and revoke names the key shown,
/// so the page acts on nothing else: Revoke on the newest of two keys leaves the
/// older one working; a page gone stale (rotated behind its back) gets 409 for its
/// Rotate, shown in the error box, and nothing changes; a retiring key has its own
/// Revoke. The key's bounds show, and its successor's; a failed create hook shows
/// after a reload.
#[tokio::test]
async fn the_one_active_card_acts_only_on_the_key_it_shows() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let store = InMemoryKeyStore::new();
    let keys = Keys::new(store.clone()).hook(FailingHook);
    let behind = keys.clone();
    let app = Arc::new(App::start(store, keys, |routes| routes.named_path(None)).await);
    let (older, record) = demo_key("older", Duration::from_secs(120), true);
    app.seed(record).await;
    let (newer, record) = demo_key("newer", Duration::from_secs(60), false);
    app.seed(record).await;
    with_browser(&chromium, &chromedriver, move |b| async move {
        open_dashboard(&b, &app).await;
        let shown = until(
            &b,
            "#key-prefix",
            &format!("{TEXT_OF_FN} return textOf('#key-prefix');"),
            vec![],
        )
        .await;
        assert_eq!(shown, json!(&newer.expose_secret()[..24]));
        assert_eq!(
            b.js("return document.querySelector('#named').hidden;", vec![])
                .await,
            json!(true)
        );

        // Revoke the key shown: the other one keeps working, and is shown next.
        confirm(&b, "#revoke", None).await;
        text_containing(&b, "#key-prefix", &older.expose_secret()[..24]).await;
        assert_eq!(app.status(&newer).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.status(&older).await,
            StatusCode::OK,
            "only the key shown"
        );
        let limits = text_containing(&b, "#key-limits", BOUNDS_SHOWN[2]).await;
        for bound in BOUNDS_SHOWN {
            assert!(limits.contains(bound), "{bound}: {limits}");
        }
        b.screenshot("one-active-1-bounds").await;

        // Rotated behind the page's back: the page's Rotate names the key it shows,
        // which is no longer the active one: 409, shown; no key minted.
        let successor = behind
            .one_active()
            .rotate(&Caller::system(), "demo", Duration::from_secs(86_400))
            .await
            .expect("rotate");
        b.client
            .find(fantoccini::Locator::Id("grace"))
            .await
            .unwrap()
            .select_by_value("0")
            .await
            .unwrap();
        click(&b, "#rotate").await;
        let error = text_containing(&b, "#error", "").await;
        eprintln!("stale rotate: {error}");
        assert!(error.to_lowercase().contains("active"), "{error}");
        let shown = b
            .js(
                r#"return document.querySelector('#new-key-value').value;"#,
                vec![],
            )
            .await;
        assert_eq!(shown, json!(""), "no key minted");
        b.screenshot("one-active-2-stale").await;
        let successor_key = successor.api_key().expose_secret().to_owned();
        assert_eq!(app.status_of(&successor_key).await, StatusCode::OK);
        assert_eq!(
            app.status(&older).await,
            StatusCode::OK,
            "retiring, not revoked"
        );

        // The page caught up: the successor, with the same bounds, and the retiring
        // key with its own Revoke.
        text_containing(&b, "#key-prefix", &successor_key[..24]).await;
        let limits = text_containing(&b, "#key-limits", BOUNDS_SHOWN[2]).await;
        for bound in BOUNDS_SHOWN {
            assert!(limits.contains(bound), "the successor: {bound}: {limits}");
        }
        let retiring = format!(
            "#retiring li[data-prefix='{}']",
            &older.expose_secret()[..24]
        );
        text_containing(&b, &retiring, "Retiring").await;
        confirm(&b, &format!("{retiring} .revoke-key"), None).await;
        until(
            &b,
            "the retiring key gone",
            "return document.querySelector(arguments[0]) === null;",
            vec![json!(retiring)],
        )
        .await;
        assert_eq!(app.status(&older).await, StatusCode::UNAUTHORIZED);
        assert_eq!(app.status_of(&successor_key).await, StatusCode::OK);

        // Revoke the last key, generate one: the hook's failure shows, and after a
        // reload too.
        confirm(&b, "#revoke", None).await;
        text_containing(&b, "#key-status", "No key").await;
        assert_eq!(
            app.status_of(&successor_key).await,
            StatusCode::UNAUTHORIZED
        );
        click_generate(&b).await;
        let key = shown_key(&b).await;
        let failure = "webhook failed: The webhook app could not be created.";
        text_containing(&b, "#new-key-warnings", failure).await;
        assert_eq!(app.status_of(&key).await, StatusCode::OK);
        b.client.refresh().await.unwrap();
        text_containing(&b, "#key-notes", failure).await;
        assert!(
            !page_holds(&b, &key[24..]).await,
            "the secret survived a reload"
        );
        b.screenshot("one-active-3-generated-reloaded").await;
    })
    .await;
}

/// Issue 17 §1: after traffic, a key's row shows its request totals, and its Usage
/// button draws both charts (the last 24 hours by hour, 30 days by day) from the
/// page's own script, with numbers that match the usage route; refused requests are
/// hatched, so the chart reads without colour.
#[tokio::test]
async fn the_usage_chart_appears_after_traffic_and_matches_the_api() {
    let Some((chromium, chromedriver)) = driver::tools() else {
        return;
    };
    let qs = Arc::new(quickstart::start_with(&[("RATE_LIMIT", "3/m")]).await);
    let cookie = qs.login().await;
    let (id, key) = qs.mint_named(&cookie, "charted").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(qs.account_status(&key).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "three admitted, two over the rate: {statuses:?}"
    );
    with_browser(&chromium, &chromedriver, move |b| async move {
        b.client.goto(&format!("{}/health", qs.base)).await.unwrap();
        assert_eq!(b.js_async(JSON_LOGIN, vec![]).await, json!(200));
        b.client
            .goto(&format!("{}/settings/api-keys", qs.base))
            .await
            .unwrap();
        let row = row_of(&key);
        let totals = text_containing(&b, &format!("{row} .usage-cell"), "24 h:").await;
        assert!(
            totals.contains("24 h: 3 admitted, 2 refused")
                && totals.contains("30 d: 3 admitted, 2 refused"),
            "{totals}"
        );
        click(&b, &format!("{row} button.usage-key")).await;
        until(
            &b,
            "both charts",
            "return document.querySelectorAll('.usage-row:not([hidden]) figure.usage-chart svg').length === 2",
            vec![],
        )
        .await;
        // What the page drew, next to what the route answers.
        let drawn = b
            .js(
                "return Array.from(document.querySelectorAll('.usage-row:not([hidden]) figure.usage-chart')).map(f => ({ \
                   step: f.getAttribute('data-step'), \
                   caption: f.querySelector('figcaption').textContent, \
                   bars: f.querySelectorAll('g.usage-bar').length, \
                   hatched: f.querySelectorAll('rect.bar-refused[fill^=\"url(#\"]').length, \
                   legend: f.querySelector('.usage-legend').textContent, \
                   admitted: Array.from(f.querySelectorAll('.usage-table tr')).slice(1).reduce((n, r) => n + Number(r.cells[1].textContent), 0), \
                   refused: Array.from(f.querySelectorAll('.usage-table tr')).slice(1).reduce((n, r) => n + Number(r.cells[2].textContent), 0) }));",
                vec![],
            )
            .await;
        let api = b
            .js_async(
                "const done = arguments[arguments.length - 1]; \
                 const path = '/api/user/keys/' + encodeURIComponent(arguments[0]) + '/usage'; \
                 Promise.all([fetch(path).then(r => r.json()), fetch(path + '?step=day').then(r => r.json())]) \
                   .then(answers => done(answers.map(a => ({ step: a.step, buckets: a.buckets.length, total: a.total }))));",
                vec![json!(id)],
            )
            .await;
        for (chart, answer) in drawn.as_array().unwrap().iter().zip(api.as_array().unwrap()) {
            assert_eq!(chart["step"], answer["step"]);
            assert_eq!(chart["bars"], answer["buckets"], "a bar per bucket");
            assert_eq!(chart["hatched"], answer["buckets"], "refused bars are hatched");
            assert_eq!(chart["admitted"], answer["total"]["admitted"]);
            assert_eq!(chart["refused"], answer["total"]["refused"]);
            let caption = chart["caption"].as_str().unwrap();
            assert!(caption.ends_with("3 admitted, 2 refused"), "{caption}");
            let legend = chart["legend"].as_str().unwrap();
            assert!(legend.contains("Admitted (solid)") && legend.contains("Refused (hatched)"));
        }
        assert_eq!(api[0]["buckets"], 24);
        assert_eq!(api[1]["buckets"], 30);
        scroll_to(&b, ".usage-row:not([hidden])").await;
        b.screenshot("usage-chart").await;
        assert!(!page_holds(&b, &key).await, "the raw key is nowhere in the page");
    })
    .await;
}
