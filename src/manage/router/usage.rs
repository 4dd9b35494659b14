//! The usage routes: a key's request history as [`Keys::usage`](crate::manage::Keys::usage)
//! reads it, over the range the query string names.

use std::time::{Duration, SystemTime};

use axum::extract::Query;
use http::Uri;
use serde::Deserialize;

use crate::{
    error::{ApiError, ErrorCode},
    manage::{UsageQuery, UsageStep},
    store::KeyId,
};

/// `?from=…&to=…&step=hour|day` (and, on the one-active route, `id=…`): times in RFC
/// 3339, UTC (`2026-12-01T00:00:00Z`). Unknown parameters are refused, so that a
/// misspelt one does not silently give the default range.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageParams {
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    id: Option<String>,
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn time(text: Option<&str>, name: &'static str) -> Result<Option<SystemTime>, ApiError> {
    text.map(|text| {
        humantime::parse_rfc3339(text).map_err(|_| match name {
            "from" => invalid("`from` must be an RFC 3339 time in UTC, like 2026-12-01T00:00:00Z."),
            _ => invalid("`to` must be an RFC 3339 time in UTC, like 2026-12-01T00:00:00Z."),
        })
    })
    .transpose()
}

impl UsageParams {
    /// The request's query; `id` only where `id_allowed`.
    pub(super) fn of(uri: &Uri, id_allowed: bool) -> Result<Self, ApiError> {
        let params = match uri.query() {
            None => UsageParams::default(),
            Some(_) => Query::<UsageParams>::try_from_uri(uri)
                .map(|Query(params)| params)
                .map_err(|_| {
                    invalid(
                        "The query string takes `from` and `to` (RFC 3339, UTC) and \
                         `step` (`hour` or `day`) only.",
                    )
                })?,
        };
        if params.id.is_some() && !id_allowed {
            return Err(invalid(
                "This route names the key in its path, not in `id`.",
            ));
        }
        Ok(params)
    }

    /// The key the query names, if any.
    pub(super) fn id(&self) -> Option<KeyId> {
        self.id.clone().map(KeyId::new)
    }

    /// The range: by default the last 24 hours by hour, or the last 30 days by day,
    /// up to `to` (default now).
    pub(super) fn query(&self, now: SystemTime) -> Result<UsageQuery, ApiError> {
        let step = match self.step.as_deref() {
            None => UsageStep::Hour,
            Some(text) => {
                UsageStep::parse(text).ok_or_else(|| invalid("`step` must be `hour` or `day`."))?
            }
        };
        let to = time(self.to.as_deref(), "to")?.unwrap_or(now);
        let span = match step {
            UsageStep::Day => Duration::from_secs(30 * 86_400),
            _ => Duration::from_secs(24 * 3600),
        };
        let from = match time(self.from.as_deref(), "from")? {
            Some(from) => from,
            None => UsageQuery::last(span, step, to).from,
        };
        Ok(UsageQuery { from, to, step })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Result<UsageParams, ApiError> {
        UsageParams::of(&format!("/usage?{query}").parse().unwrap(), true)
    }

    #[test]
    fn defaults_are_the_last_day_by_hour_or_month_by_day() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let hourly = params("").unwrap().query(now).unwrap();
        assert_eq!((hourly.to, hourly.step), (now, UsageStep::Hour));
        assert_eq!(hourly.from, now - Duration::from_secs(86_400));
        let daily = params("step=day").unwrap().query(now).unwrap();
        assert_eq!(daily.from, now - Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn times_are_rfc_3339_percent_encoded_or_not() {
        let q = params("from=2026-11-30T00%3A00%3A00Z&to=2026-12-01T00:00:00Z")
            .unwrap()
            .query(SystemTime::now())
            .unwrap();
        assert_eq!(
            q.to.duration_since(q.from).unwrap(),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn bad_queries_are_refused() {
        for query in [
            "step=week",
            "from=yesterday",
            "to=1",
            "stpe=day",
            "from=a&from=b",
        ] {
            let refused = params(query).and_then(|p| p.query(SystemTime::now()));
            assert!(refused.is_err(), "{query}");
        }
        let path_named = UsageParams::of(&"/usage?id=key_1".parse().unwrap(), false);
        assert!(path_named.is_err());
    }
}
