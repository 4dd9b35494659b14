//! What the browser really sent and got, from Chromium's DevTools network events:
//! the headers on the wire (`requestWillBeSentExtraInfo`, which `requestWillBeSent`
//! lacks: `Cookie`, `Sec-Fetch-*`), which cookies it attached or withheld and why, and
//! the status line it received.

use std::collections::HashMap;

use serde_json::Value;

/// One request as the browser made it (a preflight or a redirect hop is its own).
#[derive(Debug, Default)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    /// A CORS preflight the browser sent on its own.
    pub preflight: bool,
    /// The headers on the wire, names in lower case.
    headers: Vec<(String, String)>,
    /// The cookies the browser considered: name and the reasons it withheld it
    /// (none: it was sent).
    pub cookies: Vec<(String, Vec<String>)>,
    /// The status the server answered, if the request reached it.
    pub status: Option<u64>,
    /// Why the browser failed the request (`net::…`, and the CORS error if any).
    pub failure: Option<String>,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the cookie `name` went out with the request (its value never shown).
    pub fn sent_cookie(&self, name: &str) -> bool {
        self.header("cookie").is_some_and(|cookies| {
            cookies
                .split(';')
                .any(|c| c.trim().starts_with(&format!("{name}=")))
        })
    }

    /// The reasons the browser withheld the cookie `name` (empty if it sent it or
    /// never considered it).
    pub fn withheld(&self, name: &str) -> Vec<String> {
        self.cookies
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, reasons)| reasons.clone())
            .collect()
    }

    /// One line for the test's output: method, path, status, the fetch metadata, and
    /// what became of the session cookie. No header value but those.
    pub fn summary(&self) -> String {
        let path = url::Url::parse(&self.url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| self.url.clone());
        let answer = match (self.status, &self.failure) {
            (Some(status), _) => status.to_string(),
            (None, Some(failure)) => format!("not sent/failed: {failure}"),
            (None, None) => "no answer".into(),
        };
        let cookie = if self.sent_cookie("session") {
            "session cookie sent".to_owned()
        } else {
            let reasons = self.withheld("session");
            if reasons.is_empty() {
                "no session cookie".into()
            } else {
                format!("session cookie withheld ({})", reasons.join(", "))
            }
        };
        format!(
            "{}{} {path} -> {answer}; Origin: {}; Sec-Fetch-Site: {}; Sec-Fetch-Mode: {}; {cookie}",
            if self.preflight { "preflight " } else { "" },
            self.method,
            self.header("origin").unwrap_or("-"),
            self.header("sec-fetch-site").unwrap_or("-"),
            self.header("sec-fetch-mode").unwrap_or("-"),
        )
    }
}

/// The requests in `events` (from `Browser::network_events`), in the order they were
/// made. The n-th extra-info or response event of a request id belongs to its n-th
/// hop (a redirect keeps the id).
pub fn exchanges(events: &[Value]) -> Vec<Exchange> {
    let mut all: Vec<Exchange> = Vec::new();
    let mut hops: HashMap<String, Vec<usize>> = HashMap::new();
    for event in events {
        let params = &event["params"];
        if event["method"] == "Network.requestWillBeSent" {
            let id = params["requestId"].as_str().unwrap_or_default().to_owned();
            hops.entry(id).or_default().push(all.len());
            all.push(Exchange {
                method: params["request"]["method"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                url: params["request"]["url"].as_str().unwrap_or_default().into(),
                preflight: params["initiator"]["type"] == "preflight",
                ..Exchange::default()
            });
        }
    }
    let mut headers_seen: HashMap<String, usize> = HashMap::new();
    let mut statuses_seen: HashMap<String, usize> = HashMap::new();
    for event in events {
        let params = &event["params"];
        let Some(id) = params["requestId"].as_str() else {
            continue;
        };
        let Some(hops) = hops.get(id) else {
            continue;
        };
        let nth = |seen: &mut HashMap<String, usize>| {
            let n = seen.entry(id.to_owned()).or_default();
            *n += 1;
            hops.get(*n - 1).copied()
        };
        match event["method"].as_str().unwrap_or_default() {
            "Network.requestWillBeSentExtraInfo" => {
                let Some(i) = nth(&mut headers_seen) else {
                    continue;
                };
                if let Some(headers) = params["headers"].as_object() {
                    all[i].headers = headers
                        .iter()
                        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str().unwrap_or("").into()))
                        .collect();
                }
                for cookie in params["associatedCookies"].as_array().into_iter().flatten() {
                    let reasons = cookie["blockedReasons"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect();
                    let name = cookie["cookie"]["name"].as_str().unwrap_or_default();
                    all[i].cookies.push((name.to_owned(), reasons));
                }
            }
            "Network.responseReceivedExtraInfo" => {
                if let Some(i) = nth(&mut statuses_seen) {
                    all[i].status = params["statusCode"].as_u64();
                }
            }
            "Network.loadingFailed" => {
                let i = *hops.last().expect("a hop");
                let mut failure = params["errorText"].as_str().unwrap_or_default().to_owned();
                if let Some(cors) = params["corsErrorStatus"]["corsError"].as_str() {
                    failure = format!("{failure} ({cors})");
                }
                all[i].failure = Some(failure);
            }
            _ => {}
        }
    }
    all
}
