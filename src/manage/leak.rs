//! Leaked keys: what a secret scanner reports ([`LeakReport`]), what the deployment
//! does about a real key ([`LeakAction`]), and [`Keys::report_leak`], which decides.

use std::time::SystemTime;

use serde::Serialize;

use super::{Actor, Caller, KeyAction, KeyEvent, Keys, ManageError};

/// Longest report URL kept (in a key's metadata, the event, the audit trail and the
/// log; longer ones are cut at a character boundary).
const MAX_URL: usize = 512;
/// The metadata a leak report notes on a key: when it was reported…
pub(crate) const LEAK_REPORTED_AT: &str = "leak.reported_at";
/// …and where the key was found.
pub(crate) const LEAK_URL: &str = "leak.url";
/// What every leak note's name starts with (a rotation's successor drops them).
pub(crate) const LEAK_NOTES: &str = "leak.";

/// A secret scanner's report that a key was found where it should not be, such as a
/// public repository.
///
/// ```
/// use tower_api_key::manage::LeakReport;
///
/// let report = LeakReport::new("github")
///     .url("https://github.com/octo/app/blob/main/.env")
///     .source("content");
/// assert_eq!(report.reporter, "github");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LeakReport {
    /// Who found it (`github`, or your own scanner's name).
    pub reporter: String,
    /// Where it was found, when the scanner says.
    pub url: Option<String>,
    /// What kind of place it was found in (`content`, `commit`, `issue`…), when the
    /// scanner says.
    pub source: Option<String>,
}

impl LeakReport {
    /// A report from `reporter`, saying nothing of where.
    pub fn new(reporter: impl Into<String>) -> Self {
        LeakReport {
            reporter: reporter.into(),
            url: None,
            source: None,
        }
    }

    /// Where the key was found.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// What kind of place it was found in.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// What to do with a real key a scanner reports. Either way the key's metadata notes
/// the report (`leak.reported_at`, and `leak.url` when given), the hooks run
/// ([`KeyHooks::after_leak`](super::KeyHooks::after_leak): notify the owner there) and
/// the audit trail records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakAction {
    /// Revoke it at once (the default): whoever found it cannot use it, and its owner
    /// mints or rotates to a new one.
    #[default]
    Revoke,
    /// Leave it working, flagged in its metadata (the dashboard and views show it),
    /// for its owner to rotate.
    Flag,
}

/// Whether a reported token is a key of this service, as secret scanners label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeakVerdict {
    /// One of this service's keys (revoked or not): the report was acted on.
    TruePositive,
    /// Not a key of this service: malformed, unknown, or the secret does not match.
    FalsePositive,
}

impl Keys {
    /// Acts on a scanner's report that `token` leaked: when it is one of this
    /// service's keys (its hash matches the stored one, compared in constant time),
    /// notes the report in its metadata, applies `action` and runs the hooks with a
    /// [`KeyAction::Leaked`] event whose actor is the scanner; anything else changes
    /// nothing. The same report again (same key, same URL; scanners retry) is still a
    /// true positive and still revokes, but is noted and announced only once. URLs and
    /// names are cut to 512 bytes.
    ///
    /// ```
    /// use tower_api_key::{manage::{Caller, Keys, LeakAction, LeakReport, LeakVerdict, NewKey}, InMemoryKeyStore};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let keys = Keys::new(InMemoryKeyStore::new());
    /// let minted = keys.named().create(&Caller::system(), "acct_42", NewKey::named("ci")).await?;
    /// let leaked = minted.api_key().expose_secret();
    ///
    /// let report = LeakReport::new("my-scanner").url("https://example.com/paste/1");
    /// let verdict = keys.report_leak(leaked, &report, LeakAction::Revoke).await?;
    /// assert_eq!(verdict, LeakVerdict::TruePositive);
    /// assert!(keys.named().list("acct_42").await?[0].revoked_at.is_some());
    ///
    /// let made_up = "pk_live_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /// assert_eq!(keys.report_leak(made_up, &report, LeakAction::Revoke).await?, LeakVerdict::FalsePositive);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn report_leak(
        &self,
        token: &str,
        report: &LeakReport,
        action: LeakAction,
    ) -> Result<LeakVerdict, ManageError> {
        let Some(record) = self.record_of(token).await? else {
            return Ok(LeakVerdict::FalsePositive);
        };
        let now = SystemTime::now();
        let report = LeakReport {
            url: report
                .url
                .as_deref()
                .map(|url| cut(url, MAX_URL).to_owned()),
            source: report.source.as_deref().map(|s| cut(s, MAX_URL).to_owned()),
            reporter: cut(&report.reporter, MAX_URL).to_owned(),
        };
        // The same report again (scanners retry): acted on, announced once.
        let repeated = record.metadata.contains_key(LEAK_REPORTED_AT)
            && record.metadata.get(LEAK_URL) == report.url.as_ref();
        let mut record = (*record).clone();
        if !repeated {
            let reported_at = humantime::format_rfc3339_seconds(now).to_string();
            let mut notes = vec![(LEAK_REPORTED_AT, reported_at)];
            if let Some(url) = &report.url {
                notes.push((LEAK_URL, url.clone()));
            }
            for (name, value) in notes {
                self.set_metadata(&record.id, name, Some(&value)).await?;
                record.metadata.insert(name.to_owned(), value);
            }
        }
        let caller = Caller::new(Actor::SecretScanner {
            name: report.reporter.clone(),
        });
        let view = match action {
            LeakAction::Revoke if !record.is_revoked_at(now) => {
                self.revoke_record(&caller, &record, now).await?
            }
            _ => self.view(&record, now),
        };
        if repeated {
            return Ok(LeakVerdict::TruePositive);
        }
        tracing::warn!(
            key_prefix = %record.prefix,
            owner = %record.owner,
            reporter = %report.reporter,
            url = report.url.as_deref().unwrap_or(""),
            revoked = view.revoked_at.is_some(),
            "API key reported leaked",
        );
        let event = KeyEvent {
            action: KeyAction::Leaked,
            owner: record.owner.clone(),
            key: view,
            replaced: None,
            actor: caller.actor,
            client_addr: None,
            at: now,
            leak: Some(report),
        };
        self.run_hooks(&event).await;
        Ok(LeakVerdict::TruePositive)
    }
}

/// `text`, cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
    }
}
