//! A plain HTTP/1.1 client (hyper-util's pooled client) and one request with a deadline.

use std::{net::IpAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client as HyperClient},
    rt::TokioExecutor,
};

/// A pooled keep-alive client.
pub type Client = HyperClient<HttpConnector, Full<Bytes>>;

/// A client whose connections leave from `local` (a loopback address such as
/// 127.0.0.12, so that each traffic task is its own client address for the server's
/// failed-attempts budget), or from the default address.
pub fn client(local: Option<IpAddr>) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_local_address(local);
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request; `None` when no answer came (connection error or `deadline` passed).
pub async fn send(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    deadline: Duration,
) -> Option<Answer> {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::from(body.to_owned())).ok()?;
    let exchange = async {
        let response = client.request(request).await.ok()?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        Some(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .ok()
        .flatten()
}
