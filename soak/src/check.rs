//! The checker: every answer against the model and the store's health timeline, and
//! the report.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use crate::model::{secs, Intent, Model, OpKind, Record, NAMES};

/// One fault as it happened. `cmd_start..recovered` is when the store may have been
/// unhealthy; `certain_start..certain_end` is when it certainly was (the first
/// command had returned, the second had not started).
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub kind: &'static str,
    pub cmd_start: u64,
    pub certain_start: u64,
    pub certain_end: u64,
    pub recovered: u64,
    pub ok: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    RevokedAccepted,
    ValidRefusedHealthy,
    ValidRefusedInFault,
    UncachedServedWhileDown,
    ServerErrorOutsideFaults,
    WrongAccepted,
    NoAnswer,
    UnexpectedStatus,
    UnexpectedManagement,
    Panic,
    Secret,
    InstanceGone,
    RssOverLimit,
    FaultFailed,
}

impl Rule {
    fn text(self) -> &'static str {
        match self {
            Rule::RevokedAccepted => {
                "2xx for a key revoked before the request started (+ bound on the other instance)"
            }
            Rule::ValidRefusedHealthy => "401 for a valid key while the store was healthy",
            Rule::ValidRefusedInFault => {
                "401 for a valid key during a fault window (README: a failing store gives 503, never 401)"
            }
            Rule::UncachedServedWhileDown => {
                "2xx for a key not cached on that instance while the store was down or paused"
            }
            Rule::ServerErrorOutsideFaults => {
                "5xx outside the fault windows (before the first fault or after recovery + grace)"
            }
            Rule::WrongAccepted => "2xx for a wrong secret or an unknown prefix",
            Rule::NoAnswer => "no answer from the instance (connection error or 15 s deadline)",
            Rule::UnexpectedStatus => {
                "a valid key answered neither 2xx nor 401 nor 5xx (e.g. 403/429) while healthy"
            }
            Rule::UnexpectedManagement => {
                "a management call answered an unexpected status outside the fault windows"
            }
            Rule::Panic => "a panic in an instance's output",
            Rule::Secret => "a secret in an instance's output",
            Rule::InstanceGone => "an instance exited during the run",
            Rule::RssOverLimit => "peak RSS over the limit",
            Rule::FaultFailed => "a fault-injection command failed",
        }
    }
}

pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

pub struct Checker<'a> {
    pub model: &'a Model,
    pub faults: &'a [Fault],
    pub bound_us: u64,
    pub recovery_us: u64,
}

fn describe(model: &Model, r: &Record) -> String {
    let key = match (r.key, r.wrong) {
        (Some(k), false) => model.keys[k as usize].prefix().to_owned(),
        (Some(k), true) => format!("{} (wrong secret)", model.keys[k as usize].prefix()),
        (None, true) => "random key".to_owned(),
        (None, false) => "-".to_owned(),
    };
    format!(
        "t={:.3}–{:.3} s on {} {:?} key {key}: status {}",
        secs(r.start),
        secs(r.end),
        NAMES[r.inst as usize],
        r.intent,
        r.status
    )
}

impl Checker<'_> {
    /// The windows in which the valid-key and 5xx rules are suspended: from the fault
    /// command's start until recovery + the recovery grace.
    pub fn windows(&self) -> Vec<(u64, u64)> {
        self.faults
            .iter()
            .map(|f| (f.cmd_start, f.recovered + self.recovery_us))
            .collect()
    }

    fn in_window(&self, r: &Record) -> bool {
        self.windows()
            .iter()
            .any(|&(from, to)| r.start < to && r.end > from)
    }

    /// Every record against the rules.
    pub fn check(&self, records: &[Record]) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut flag = |rule, r: &Record, extra: String| {
            out.push(Violation {
                rule,
                detail: format!("{}{extra}", describe(self.model, r)),
            })
        };
        for r in records {
            let ok = (200..300).contains(&r.status);
            let server_error = (500..600).contains(&r.status);
            let faulty = self.in_window(r);
            if r.status == 0 {
                flag(Rule::NoAnswer, r, String::new());
                continue;
            }
            if server_error && !faulty {
                flag(Rule::ServerErrorOutsideFaults, r, String::new());
            }
            if !r.intent.is_traffic() {
                if !server_error && !r.intent.expected().contains(&r.status) {
                    flag(Rule::UnexpectedManagement, r, String::new());
                }
                continue;
            }
            if r.wrong {
                if ok {
                    flag(Rule::WrongAccepted, r, String::new());
                }
                continue;
            }
            let Some(k) = r.key else { continue };
            let key = &self.model.keys[k as usize];
            let inst = r.inst as usize;
            if ok {
                if let Some(from) = key.refused_from(inst, self.bound_us) {
                    if r.start > from {
                        flag(
                            Rule::RevokedAccepted,
                            r,
                            format!(
                                "; must be refused from t={:.3} s (started {:.1} ms later)",
                                secs(from),
                                (r.start - from) as f64 / 1e3
                            ),
                        );
                    }
                }
                if r.first_use {
                    if let Some(f) = self
                        .faults
                        .iter()
                        .find(|f| f.certain_start <= r.start && r.end <= f.certain_end)
                    {
                        flag(
                            Rule::UncachedServedWhileDown,
                            r,
                            format!("; first use on this instance, store {} ", f.kind),
                        );
                    }
                }
            }
            let valid = r.start >= key.minted_end && r.end < key.valid_until();
            if valid && r.status == 401 {
                let rule = if faulty {
                    Rule::ValidRefusedInFault
                } else {
                    Rule::ValidRefusedHealthy
                };
                flag(rule, r, String::new());
            } else if valid && !ok && !server_error && r.status != 401 && !faulty {
                flag(Rule::UnexpectedStatus, r, String::new());
            }
        }
        out
    }

    /// The figures around the rules: revocation reach, recovery, fresh probes.
    pub fn figures(&self, records: &[Record]) -> String {
        let mut text = String::new();
        // Revocation reach: the latest 2xx started after a revocation returned.
        let mut reach = [0u64; 2]; // same instance, other instance
        let mut revoked_keys = BTreeSet::new();
        let mut after = [0u64; 2];
        for r in records.iter().filter(|r| r.intent.is_traffic() && !r.wrong) {
            let Some(k) = r.key else { continue };
            let key = &self.model.keys[k as usize];
            for op in key.ops.iter().filter(|op| op.ok) {
                let effective = match op.kind {
                    OpKind::Rotate { grace_us } => op.end + grace_us,
                    _ => op.end,
                };
                if r.start <= effective {
                    continue;
                }
                let which = usize::from(op.inst != r.inst as usize);
                revoked_keys.insert(k);
                after[which] += 1;
                if (200..300).contains(&r.status) {
                    reach[which] = reach[which].max(r.start - effective);
                }
            }
        }
        let _ = writeln!(
            text,
            "revocation reach: {} revoked keys, {} requests after the revocation took effect on the \
             revoking instance and {} on the other; latest 2xx started after it: {:.1} ms on the \
             revoking instance, {:.1} ms on the other (bound {} ms)",
            revoked_keys.len(),
            after[0],
            after[1],
            reach[0] as f64 / 1e3,
            reach[1] as f64 / 1e3,
            self.bound_us / 1000
        );
        // Recovery: the last 5xx after each fault, per instance.
        for (i, f) in self.faults.iter().enumerate() {
            let until = self
                .faults
                .get(i + 1)
                .map_or(u64::MAX, |next| next.cmd_start);
            for (inst, name) in NAMES.iter().enumerate() {
                let mut errors = 0;
                let mut last_end = None;
                let mut cached_ok = 0;
                let mut last_cached = None;
                for r in records.iter().filter(|r| {
                    r.inst as usize == inst && r.start >= f.cmd_start && r.start < until
                }) {
                    if (500..600).contains(&r.status) {
                        errors += 1;
                        last_end = Some(last_end.unwrap_or(0).max(r.end));
                    }
                    if (200..300).contains(&r.status)
                        && r.intent.is_traffic()
                        && !r.first_use
                        && f.certain_start <= r.start
                        && r.end <= f.certain_end
                    {
                        cached_ok += 1;
                        last_cached = Some(r.start - f.certain_start);
                    }
                }
                let last = match last_end {
                    Some(end) if end > f.recovered => {
                        format!("{:.2} s after the store was back", secs(end - f.recovered))
                    }
                    Some(_) => "before the store was back".to_owned(),
                    None => "none".to_owned(),
                };
                let served = last_cached.map_or(String::new(), |t| {
                    format!(" (the last started {:.2} s into it)", secs(t))
                });
                let _ = writeln!(
                    text,
                    "{} on {}: {errors} answers 5xx, the last ended {last}; {cached_ok} 2xx for \
                     cached keys while it certainly held{served}",
                    f.kind, name
                );
            }
        }
        // Fresh-key probes.
        let mut probes: BTreeMap<(&str, u16), u64> = BTreeMap::new();
        let mut sent = 0;
        for r in records.iter().filter(|r| r.intent == Intent::Fresh) {
            sent += 1;
            let judged = self
                .faults
                .iter()
                .find(|f| f.certain_start <= r.start && r.end <= f.certain_end);
            let label = match judged {
                Some(f) if r.first_use => f.kind,
                _ => "not judged (ended after the store was back)",
            };
            *probes.entry((label, r.status)).or_default() += 1;
        }
        let _ = writeln!(
            text,
            "first-use probes (keys never sent to that instance, sent while the store certainly \
             held its fault): {sent} sent"
        );
        for ((label, status), n) in probes {
            let _ = writeln!(text, "  {label}: status {status} × {n}");
        }
        text
    }
}

/// Requests by intent and status.
pub fn table(records: &[Record]) -> String {
    let mut by: BTreeMap<Intent, BTreeMap<u16, u64>> = BTreeMap::new();
    for r in records {
        *by.entry(r.intent).or_default().entry(r.status).or_default() += 1;
    }
    let mut text = String::new();
    for (intent, statuses) in by {
        let total: u64 = statuses.values().sum();
        let detail: Vec<String> = statuses
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no answer×{n}")
                } else {
                    format!("{s}×{n}")
                }
            })
            .collect();
        let _ = writeln!(
            text,
            "  {:<14} {:>8}   {}",
            format!("{intent:?}"),
            total,
            detail.join("  ")
        );
    }
    text
}

/// The violations by rule, with at most `examples` details each.
pub fn summarize(violations: &[Violation], examples: usize) -> String {
    let mut by: BTreeMap<Rule, Vec<&Violation>> = BTreeMap::new();
    for v in violations {
        by.entry(v.rule).or_default().push(v);
    }
    let mut text = String::new();
    for (rule, list) in by {
        let _ = writeln!(text, "  {} × {}", list.len(), rule.text());
        for v in list.iter().take(examples) {
            let _ = writeln!(text, "      {}", v.detail);
        }
        if list.len() > examples {
            let _ = writeln!(text, "      … {} more", list.len() - examples);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{random_key, Op, OpKind};

    const MS: u64 = 1_000;
    const S: u64 = 1_000_000;

    /// Key 0 minted at 1 s, revoked through A 10–10.05 s; key 1 live; one restart
    /// 20–26 s (certain 20.1–25 s).
    fn setup() -> (Model, Vec<Fault>) {
        let mut model = Model::default();
        for _ in 0..2 {
            model.add_key(random_key(), Some("id".into()), S, true, true, false);
        }
        model.finish_op(
            0,
            Op {
                kind: OpKind::Revoke,
                inst: 0,
                start: 10 * S,
                end: 10 * S + 50 * MS,
                ok: true,
            },
        );
        let faults = vec![Fault {
            kind: "restart",
            cmd_start: 20 * S,
            certain_start: 20 * S + 100 * MS,
            certain_end: 25 * S,
            recovered: 26 * S,
            ok: true,
        }];
        (model, faults)
    }

    fn record(start: u64, inst: u8, key: Option<u32>, status: u16) -> Record {
        Record {
            start,
            end: start + MS,
            inst,
            intent: Intent::Valid,
            key,
            wrong: false,
            first_use: false,
            status,
        }
    }

    fn rules(records: &[Record]) -> Vec<Rule> {
        let (model, faults) = setup();
        let checker = Checker {
            model: &model,
            faults: &faults,
            bound_us: 100 * MS,
            recovery_us: 5 * S,
        };
        checker.check(records).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn revoked_key_accepted_after_the_bound_is_flagged() {
        // Same instance: any 200 started after the revoke returned.
        assert_eq!(
            rules(&[record(10 * S + 51 * MS, 0, Some(0), 200)]),
            [Rule::RevokedAccepted]
        );
        // Other instance: allowed within the bound, flagged after it.
        assert!(rules(&[record(10 * S + 120 * MS, 1, Some(0), 200)]).is_empty());
        assert_eq!(
            rules(&[record(10 * S + 151 * MS, 1, Some(0), 200)]),
            [Rule::RevokedAccepted]
        );
        // Started before the revoke returned: either answer is fine.
        assert!(rules(&[record(10 * S + 10 * MS, 0, Some(0), 200)]).is_empty());
    }

    #[test]
    fn valid_key_refused_is_flagged_by_window() {
        assert_eq!(
            rules(&[record(5 * S, 1, Some(1), 401)]),
            [Rule::ValidRefusedHealthy]
        );
        assert_eq!(
            rules(&[record(22 * S, 1, Some(1), 401)]),
            [Rule::ValidRefusedInFault]
        );
        // Key 0 after its revoke started: 401 is right.
        assert!(rules(&[record(10 * S + 10 * MS, 0, Some(0), 401)]).is_empty());
        assert_eq!(
            rules(&[record(5 * S, 1, Some(1), 429)]),
            [Rule::UnexpectedStatus]
        );
    }

    #[test]
    fn server_errors_only_inside_the_windows() {
        assert!(rules(&[record(22 * S, 0, Some(1), 503)]).is_empty());
        assert!(rules(&[record(30 * S, 0, Some(1), 503)]).is_empty()); // recovered + 4 s
        assert_eq!(
            rules(&[record(31 * S + MS, 0, Some(1), 503)]),
            [Rule::ServerErrorOutsideFaults]
        );
        assert_eq!(
            rules(&[record(5 * S, 0, None, 500)]),
            [Rule::ServerErrorOutsideFaults]
        );
        assert_eq!(rules(&[record(5 * S, 0, None, 0)]), [Rule::NoAnswer]);
    }

    #[test]
    fn an_uncached_key_served_while_down_is_flagged() {
        let mut fresh = record(21 * S, 0, Some(1), 200);
        fresh.intent = Intent::Fresh;
        fresh.first_use = true;
        assert_eq!(rules(&[fresh]), [Rule::UncachedServedWhileDown]);
        fresh.status = 503;
        assert!(rules(&[fresh]).is_empty());
        // Ended after the store came back: not judged.
        fresh.status = 200;
        fresh.start = 24 * S + 999 * MS;
        fresh.end = 25 * S + MS;
        assert!(rules(&[fresh]).is_empty());
        // Cached (used before): allowed.
        let mut cached = record(21 * S, 0, Some(1), 200);
        cached.first_use = false;
        assert!(rules(&[cached]).is_empty());
    }

    #[test]
    fn wrong_keys_and_management() {
        let mut wrong = record(5 * S, 0, Some(1), 200);
        wrong.wrong = true;
        assert_eq!(rules(&[wrong]), [Rule::WrongAccepted]);
        wrong.status = 401;
        assert!(rules(&[wrong]).is_empty());
        let mut mint = record(5 * S, 0, None, 201);
        mint.intent = Intent::Mint;
        assert!(rules(&[mint]).is_empty());
        mint.status = 400;
        assert_eq!(rules(&[mint]), [Rule::UnexpectedManagement]);
    }

    #[test]
    fn rotation_grace_and_reach() {
        let (mut model, _) = setup();
        model.finish_op(
            1,
            Op {
                kind: OpKind::Rotate { grace_us: 2 * S },
                inst: 1,
                start: 40 * S,
                end: 40 * S + 10 * MS,
                ok: true,
            },
        );
        let key = &model.keys[1];
        assert_eq!(key.valid_until(), 42 * S);
        assert_eq!(key.refused_from(1, 100 * MS), Some(42 * S + 10 * MS));
        assert_eq!(key.refused_from(0, 100 * MS), Some(42 * S + 10 * MS));
    }
}
