//! The leak-report route ([`SecretScanning`]): GitHub's secret scanning partner
//! format in, one verdict per token out.

use axum::{body::Body, extract::State, http::request::Parts};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{answer_in_order, request::read_body, Answer, ManagementRoutes};
use crate::{
    error::{ApiError, ErrorCode},
    manage::{
        secret_scanning::{SecretScanning, MAX_REPORTED_TOKENS, MAX_REPORT_BYTES},
        LeakReport, LeakVerdict,
    },
};

/// The header naming the key a report was signed with.
const KEY_IDENTIFIER: &str = "github-public-key-identifier";
/// The header carrying the report's signature (base64 DER).
const SIGNATURE: &str = "github-public-key-signature";

/// One reported token. No `Debug`: it holds a key.
#[derive(Deserialize)]
struct Reported {
    token: String,
    #[serde(rename = "type")]
    token_type: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

/// The answer for one token: its hash, never the token.
#[derive(Serialize)]
struct Verdict {
    token_hash: String,
    token_type: String,
    label: LeakVerdict,
}

/// `POST <path>`: verifies the report's signature, then acts on each token.
pub(super) async fn receive(
    State(routes): State<ManagementRoutes>,
    parts: Parts,
    body: Body,
) -> Answer {
    let Some(scanning) = &routes.secret_scanning else {
        return Err(ApiError::new(ErrorCode::NotFound, "No such route."));
    };
    let body = read_body(body, MAX_REPORT_BYTES).await?;
    if !signed(scanning, &parts, &body) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "The report is not signed by a configured scanner key.",
        ));
    }
    let reported = parse(&body)?;
    let mut verdicts = Vec::with_capacity(reported.len());
    for token in reported {
        let mut report = LeakReport::new(scanning.reporter.as_str());
        report.url = token.url;
        report.source = token.source;
        let label = routes
            .keys
            .report_leak(&token.token, &report, scanning.action)
            .await?;
        verdicts.push(Verdict {
            token_hash: base16ct::lower::encode_string(&Sha256::digest(token.token.as_bytes())),
            token_type: token.token_type,
            label,
        });
    }
    answer_in_order(StatusCode::OK, &verdicts)
}

/// Whether the headers name a configured key and carry its signature of `body`.
fn signed(scanning: &SecretScanning, parts: &Parts, body: &[u8]) -> bool {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    match (header(KEY_IDENTIFIER), header(SIGNATURE)) {
        (Some(identifier), Some(signature)) => scanning.keys.verify(identifier, signature, body),
        _ => false,
    }
}

/// The report: a JSON array of at most [`MAX_REPORTED_TOKENS`] tokens.
fn parse(body: &[u8]) -> Result<Vec<Reported>, ApiError> {
    let shape = || {
        ApiError::new(
            ErrorCode::InvalidRequest,
            r#"A report is a JSON array of {"token","type","url","source"} objects."#,
        )
    };
    let items: Vec<Reported> = serde_json::from_slice(body).map_err(|_| shape())?;
    if items.len() > MAX_REPORTED_TOKENS {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("A report carries at most {MAX_REPORTED_TOKENS} tokens."),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    Ok(items)
}
