//! Soak/fault driver for `tower-api-key` (issue 7): mixed traffic from several client
//! tasks against two quickstart instances that share one store, the store restarted
//! once and paused once in the middle, and a checker that records every answer and
//! judges it against a model of the keys and the store's health. Run by
//! `scripts/soak.sh`, which starts the store and the instances and passes everything
//! in the environment:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `SOAK_A`, `SOAK_B` | the instances' base URLs (`http://127.0.0.1:PORT`) | required |
//! | `SOAK_PIDS` | `pidA,pidB`: RSS sampled every second, and both must stay alive | none |
//! | `SOAK_LOGS` | comma-separated files with the instances' stdout and stderr | none |
//! | `SOAK_SEEDS` | the first instance's stdout, which holds the demo keys it minted | none |
//! | `SOAK_DURATION` | seconds of traffic | 300 |
//! | `SOAK_CLIENTS` | traffic tasks (each from its own 127.0.1.x address) | 8 |
//! | `SOAK_RATE` | traffic requests per second, all tasks together | 1000 |
//! | `SOAK_STOP_CMD`, `SOAK_START_CMD` | shell commands: stop the store, start it again | none (no restart) |
//! | `SOAK_PAUSE_CMD`, `SOAK_RESUME_CMD` | shell commands: freeze the store, thaw it | none (no pause) |
//! | `SOAK_DOWN_SECS`, `SOAK_PAUSE_SECS` | how long each fault holds | 5, 6 |
//! | `SOAK_BOUND_MS` | the documented cross-instance revocation bound | 100 |
//! | `SOAK_RECOVERY_SECS` | after the store is back, 5xx allowed for this long | 5 |
//! | `SOAK_RSS_LIMIT_MB` | peak RSS allowed per instance | 64 |
//! | `SOAK_FRESH` | never-used keys per fault and instance, sent while it holds | 20 |
//! | `SOAK_LABEL` | a name for the report | soak |
//!
//! Exit status 0 when no rule was broken, 1 otherwise, 2 when it could not run.

mod check;
mod model;
mod traffic;
mod web;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::Duration,
};

use check::{Checker, Rule, Violation};
use model::{secs, Clock, Model, Record, NAMES};
use traffic::{Ctx, Manager};

/// The run's settings, from the environment.
pub struct Config {
    pub label: String,
    pub bases: [String; 2],
    pub pids: Vec<u32>,
    pub logs: Vec<String>,
    pub seeds: Option<String>,
    pub duration: Duration,
    pub clients: usize,
    pub rate: u64,
    pub stop_cmd: Option<String>,
    pub start_cmd: Option<String>,
    pub pause_cmd: Option<String>,
    pub resume_cmd: Option<String>,
    pub down_for: Duration,
    pub pause_for: Duration,
    pub bound_us: u64,
    pub recovery_us: u64,
    pub rss_limit_kb: u64,
    pub fresh: usize,
    pub live_target: usize,
    pub live_low: usize,
    pub live_high: usize,
    pub mgmt_interval: Duration,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, default: f64) -> f64 {
    var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn list(name: &str) -> Vec<String> {
    var(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let base = |name: &str| {
            let url = var(name).ok_or(format!("{name} is required"))?;
            let host = url
                .strip_prefix("http://")
                .ok_or(format!("{name}: http:// URL expected"))?;
            if !(host.starts_with("127.") || host.starts_with("localhost")) {
                return Err(format!("{name}: loopback only, got {url}"));
            }
            Ok(url.trim_end_matches('/').to_owned())
        };
        let clients = number("SOAK_CLIENTS", 8.0) as usize;
        if !(1..=200).contains(&clients) {
            return Err("SOAK_CLIENTS: 1 to 200".into());
        }
        Ok(Config {
            label: var("SOAK_LABEL").unwrap_or_else(|| "soak".into()),
            bases: [base("SOAK_A")?, base("SOAK_B")?],
            pids: list("SOAK_PIDS")
                .iter()
                .map(|p| p.parse().map_err(|_| format!("SOAK_PIDS: {p}")))
                .collect::<Result<_, _>>()?,
            logs: list("SOAK_LOGS"),
            seeds: var("SOAK_SEEDS"),
            duration: Duration::from_secs_f64(number("SOAK_DURATION", 300.0)),
            clients,
            rate: number("SOAK_RATE", 1000.0).max(1.0) as u64,
            stop_cmd: var("SOAK_STOP_CMD"),
            start_cmd: var("SOAK_START_CMD"),
            pause_cmd: var("SOAK_PAUSE_CMD"),
            resume_cmd: var("SOAK_RESUME_CMD"),
            down_for: Duration::from_secs_f64(number("SOAK_DOWN_SECS", 5.0)),
            pause_for: Duration::from_secs_f64(number("SOAK_PAUSE_SECS", 6.0)),
            bound_us: (number("SOAK_BOUND_MS", 100.0) * 1e3) as u64,
            recovery_us: (number("SOAK_RECOVERY_SECS", 5.0) * 1e6) as u64,
            rss_limit_kb: (number("SOAK_RSS_LIMIT_MB", 64.0) * 1024.0) as u64,
            fresh: number("SOAK_FRESH", 20.0) as usize,
            live_target: 40,
            live_low: 30,
            live_high: 60,
            mgmt_interval: Duration::from_millis(250),
        })
    }
}

/// VmRSS of a process in KiB (`None` once it is gone).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The demo keys the first instance printed (`full access: …`, `read only: …`).
fn read_seeds(path: &str, model: &mut Model) {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("soak: cannot read {path}: no seeded keys");
        return;
    };
    for line in text.lines() {
        for (label, demo, writable) in
            [("full access: ", true, true), ("read only: ", false, false)]
        {
            if let Some(key) = line.strip_prefix(label) {
                if key.starts_with("pk_live_") && key.len() == 72 {
                    model.add_key(key.to_owned(), None, 0, demo, writable, false);
                }
            }
        }
    }
}

/// A line in which the quickstart shows a demo key once, by design.
fn is_key_display(line: &str) -> bool {
    ["full access: pk_live_", "read only: pk_live_"]
        .iter()
        .any(|p| line.starts_with(p))
        && line.len() == line.find("pk_live_").unwrap_or(0) + 72
}

/// Scans the instances' output: panics, and any secret the driver ever sent or saw
/// (every 48-character window of every long hex run, looked up), and any `pk_live_`
/// text longer than a prefix outside the one-time display lines.
fn scan_logs(cfg: &Config, model: &Model) -> (String, Vec<Violation>) {
    let mut violations = Vec::new();
    let (mut lines, mut displays) = (0u64, 0u64);
    for path in &cfg.logs {
        let Ok(bytes) = std::fs::read(path) else {
            violations.push(Violation {
                rule: Rule::Secret,
                detail: format!("cannot read {path}: not scanned"),
            });
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            if line.contains("panicked") {
                violations.push(Violation {
                    rule: Rule::Panic,
                    detail: format!("{path}:{}: {}", n + 1, redact(line)),
                });
            }
            if is_key_display(line) {
                displays += 1;
                continue;
            }
            let bytes = line.as_bytes();
            let mut i = 0;
            let mut leaked = false;
            while i < bytes.len() {
                if !bytes[i].is_ascii_hexdigit() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                    i += 1;
                }
                if i - start >= 48 {
                    leaked |= (start..=i - 48).any(|w| model.secrets.contains(&line[w..w + 48]));
                }
            }
            let long_key = line.match_indices("pk_live_").any(|(at, _)| {
                line[at + 8..]
                    .bytes()
                    .take_while(u8::is_ascii_hexdigit)
                    .count()
                    > 16
            });
            if leaked || long_key {
                violations.push(Violation {
                    rule: Rule::Secret,
                    detail: format!("{path}:{}: {}", n + 1, redact(line)),
                });
            }
        }
    }
    let summary = format!(
        "logs: {} files, {lines} lines scanned ({displays} one-time demo-key display lines \
         skipped), {} secrets known to the driver looked for",
        cfg.logs.len(),
        model.secrets.len()
    );
    (summary, violations)
}

/// A line with every long hex run cut to its first 8 characters.
fn redact(line: &str) -> String {
    let mut out = String::new();
    let mut run = 0;
    for c in line.chars() {
        if c.is_ascii_hexdigit() {
            run += 1;
            if run <= 8 {
                out.push(c);
            } else if run == 9 {
                out.push('…');
            }
        } else {
            run = 0;
            out.push(c);
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let code = run(cfg).await;
    std::process::exit(code);
}

async fn run(cfg: Config) -> i32 {
    let ctx = Arc::new(Ctx {
        clock: Clock::start(),
        model: Mutex::new(Model::default()),
        stop: AtomicBool::new(false),
        cfg,
    });
    let cfg = &ctx.cfg;
    let probe = web::client(None);
    for base in &cfg.bases {
        let url = format!("{base}/health");
        let mut up = false;
        for _ in 0..100 {
            if web::send(
                &probe,
                ::http::Method::GET,
                &url,
                &[],
                "",
                Duration::from_secs(2),
            )
            .await
            .is_some_and(|a| a.status == 200)
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !up {
            eprintln!("soak: {url} does not answer");
            return 2;
        }
    }
    if let Some(seeds) = &cfg.seeds {
        read_seeds(seeds, &mut ctx.model.lock().unwrap());
    }

    // Keys: a live pool, and never-used keys kept for each fault and instance.
    let mut setup = Manager::new(&ctx).await;
    for n in 0..cfg.live_target {
        if setup.mint(n % 2, false).await.is_none() {
            eprintln!("soak: minting the initial keys failed");
            return 2;
        }
    }
    let mut reserved = Vec::new();
    for _fault in 0..2 {
        let mut per_inst = [Vec::new(), Vec::new()];
        for (inst, keys) in per_inst.iter_mut().enumerate() {
            for n in 0..cfg.fresh {
                // Minted through either instance: an insert caches nothing.
                match setup.mint((inst + n) % 2, true).await {
                    Some(idx) => keys.push(idx),
                    None => {
                        eprintln!("soak: minting the reserved keys failed");
                        return 2;
                    }
                }
            }
        }
        reserved.push(per_inst);
    }
    let mut records: Vec<Record> = std::mem::take(&mut setup.records);
    drop(setup);
    eprintln!(
        "soak[{}]: {} keys ready at {:.1} s; {} s of traffic from {} clients at {} req/s",
        cfg.label,
        ctx.model.lock().unwrap().keys.len(),
        secs(ctx.clock.now()),
        cfg.duration.as_secs_f64(),
        cfg.clients,
        cfg.rate
    );

    // RSS every second until the end of the sweep.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (pids, sampling) = (cfg.pids.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut samples: Vec<Vec<Option<u64>>> = Vec::new();
            while sampling.load(SeqCst) {
                samples.push(pids.iter().map(|&p| rss_kb(p)).collect());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples.push(pids.iter().map(|&p| rss_kb(p)).collect());
            samples
        })
    };

    let traffic_start = ctx.clock.now();
    let clients: Vec<_> = (0..cfg.clients)
        .map(|n| tokio::spawn(traffic::client_task(ctx.clone(), n)))
        .collect();
    let manager = tokio::spawn(traffic::management_task(ctx.clone()));
    let faults = tokio::spawn(traffic::fault_task(ctx.clone(), reserved));
    tokio::time::sleep_until((ctx.clock.instant(traffic_start) + cfg.duration).into()).await;
    let (faults, probe_records) = faults.await.expect("fault task");
    ctx.stop.store(true, SeqCst);
    for client in clients {
        records.extend(client.await.expect("client task"));
    }
    records.extend(manager.await.expect("management task"));
    records.extend(probe_records);
    let traffic_end = ctx.clock.now();

    // The end: revoke everything the demo user has through A, wait the bound, and
    // send every key to both instances.
    let mut last = Manager::new(&ctx).await;
    let revoked_all = last.revoke_all(0).await;
    records.append(&mut last.records);
    drop(last);
    tokio::time::sleep(Duration::from_micros(cfg.bound_us) + Duration::from_millis(50)).await;
    records.extend(traffic::final_sweep(ctx.clone()).await);
    sampling.store(false, SeqCst);
    let samples = sampler.await.expect("sampler");
    records.sort_by_key(|r| r.start);

    // Judge.
    let model = ctx.model.lock().unwrap();
    let checker = Checker {
        model: &model,
        faults: &faults,
        bound_us: cfg.bound_us,
        recovery_us: cfg.recovery_us,
    };
    let mut violations = checker.check(&records);
    let (log_summary, log_violations) = scan_logs(cfg, &model);
    violations.extend(log_violations);
    for f in faults.iter().filter(|f| !f.ok) {
        violations.push(Violation {
            rule: Rule::FaultFailed,
            detail: format!("the {} at {:.1} s", f.kind, secs(f.cmd_start)),
        });
    }
    if !revoked_all {
        violations.push(Violation {
            rule: Rule::UnexpectedManagement,
            detail: "the final revoke-all did not answer 200".into(),
        });
    }

    // RSS.
    let mut rss_text = String::new();
    for (i, pid) in cfg.pids.iter().enumerate() {
        let series: Vec<u64> = samples.iter().filter_map(|s| s[i]).collect();
        let name = NAMES.get(i).copied().unwrap_or("?");
        if samples.last().and_then(|s| s[i]).is_none() {
            violations.push(Violation {
                rule: Rule::InstanceGone,
                detail: format!("instance {name} (pid {pid}) is gone at the end"),
            });
        }
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            continue;
        };
        let peak = series.iter().copied().max().unwrap_or(0);
        let mb = |kb: u64| kb as f64 / 1024.0;
        let quarter = |q: usize| mb(series[(series.len() - 1) * q / 4]);
        rss_text += &format!(
            "  {name} (pid {pid}): start {:.1} MB, peak {:.1} MB, end {:.1} MB ({} samples; \
             at each quarter {:.1} / {:.1} / {:.1} / {:.1} MB)\n",
            mb(*first),
            mb(peak),
            mb(*last),
            series.len(),
            quarter(1),
            quarter(2),
            quarter(3),
            quarter(4),
        );
        if peak > cfg.rss_limit_kb {
            violations.push(Violation {
                rule: Rule::RssOverLimit,
                detail: format!(
                    "instance {name}: peak {:.1} MB > {:.0} MB",
                    peak as f64 / 1024.0,
                    cfg.rss_limit_kb as f64 / 1024.0
                ),
            });
        }
    }

    // Report.
    println!(
        "==================== soak report: {} ====================",
        cfg.label
    );
    println!(
        "traffic {:.1}–{:.1} s ({:.0} s, {} clients, {} req/s target); bound {} ms; \
         recovery grace {} s",
        secs(traffic_start),
        secs(traffic_end),
        secs(traffic_end - traffic_start),
        cfg.clients,
        cfg.rate,
        cfg.bound_us / 1000,
        cfg.recovery_us / 1_000_000
    );
    println!(
        "keys: {} in the model ({} minted through the management routes)",
        model.keys.len(),
        model.minted
    );
    println!("fault timeline (seconds since the driver started):");
    for (f, (from, to)) in faults.iter().zip(checker.windows()) {
        println!(
            "  {:<7} command at {:.2}; store certainly {} {:.2}–{:.2}; back at {:.2}; \
             exclusion window {:.2}–{:.2}{}",
            f.kind,
            secs(f.cmd_start),
            if f.kind == "pause" { "paused" } else { "down" },
            secs(f.certain_start),
            secs(f.certain_end),
            secs(f.recovered),
            secs(from),
            secs(to),
            if f.ok { "" } else { " (COMMAND FAILED)" }
        );
    }
    if faults.is_empty() {
        println!("  none (no fault commands given)");
    }
    println!("answers by intent and status ({} in all):", records.len());
    print!("{}", check::table(&records));
    print!("{}", checker.figures(&records));
    println!(
        "peak RSS (limit {:.0} MB per instance):",
        cfg.rss_limit_kb as f64 / 1024.0
    );
    print!("{rss_text}");
    println!("{log_summary}");
    if violations.is_empty() {
        println!("violations: none");
        println!("RESULT [{}]: PASS", cfg.label);
        0
    } else {
        println!("violations: {}", violations.len());
        print!("{}", check::summarize(&violations, 10));
        println!("RESULT [{}]: FAIL", cfg.label);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_scan_finds_secrets_and_long_keys_but_not_prefixes() {
        let mut model = Model::default();
        let key = model::random_key();
        model.add_key(key.clone(), None, 0, true, true, false);
        let dir = std::env::temp_dir().join(format!("soak-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("log");
        let other = model::random_key();
        let lines = [
            format!("full access: {key}"),                  // the one-time display
            format!("minted {} (full access)", &key[..24]), // a prefix: fine
            format!("oops {}", &key[8..]),                  // the secret: flagged
            format!("unknown {other}"),                     // a whole key: flagged
        ];
        std::fs::write(&file, lines.join("\n")).unwrap();
        let cfg = Config {
            logs: vec![file.display().to_string()],
            ..test_config()
        };
        let (_, found) = scan_logs(&cfg, &model);
        let _ = std::fs::remove_dir_all(&dir);
        let lines: Vec<&str> = found.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(found.len(), 2, "{lines:?}");
        assert!(found.iter().all(|v| v.rule == Rule::Secret));
        assert!(lines.iter().all(|l| !l.contains(&key[24..])), "redacted");
    }

    fn test_config() -> Config {
        Config {
            label: "test".into(),
            bases: ["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            pids: Vec::new(),
            logs: Vec::new(),
            seeds: None,
            duration: Duration::from_secs(1),
            clients: 1,
            rate: 1,
            stop_cmd: None,
            start_cmd: None,
            pause_cmd: None,
            resume_cmd: None,
            down_for: Duration::from_secs(1),
            pause_for: Duration::from_secs(1),
            bound_us: 100_000,
            recovery_us: 5_000_000,
            rss_limit_kb: 1,
            fresh: 1,
            live_target: 1,
            live_low: 1,
            live_high: 2,
            mgmt_interval: Duration::from_secs(1),
        }
    }
}
