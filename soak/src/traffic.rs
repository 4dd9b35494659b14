//! The tasks: API traffic, key management, fault injection with its first-use probes,
//! and the final sweep.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::Duration,
};

use http::Method;
use serde_json::json;
use tokio::{task::JoinSet, time::MissedTickBehavior};

use crate::{
    check::Fault,
    model::{secs, Clock, Intent, Model, Op, OpKind, Record, NAMES},
    web::{self, Client},
    Config,
};

/// A client's answer deadline: far above the store's 2 s timeout, so a missing
/// answer means the instance itself did not answer.
const DEADLINE: Duration = Duration::from_secs(15);

/// What every task shares.
pub struct Ctx {
    pub cfg: Config,
    pub clock: Clock,
    pub model: Mutex<Model>,
    pub stop: AtomicBool,
}

impl Ctx {
    fn url(&self, inst: usize, path: &str) -> String {
        format!("{}{path}", self.cfg.bases[inst])
    }

    /// Sends one request and returns its record (and the answer, if any).
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        client: &Client,
        inst: usize,
        intent: Intent,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        key: Option<u32>,
    ) -> (Record, Option<web::Answer>) {
        let url = self.url(inst, path);
        let start = self.clock.now();
        let answer = web::send(client, method, &url, headers, body, DEADLINE).await;
        let end = self.clock.now();
        let record = Record {
            start,
            end,
            inst: inst as u8,
            intent,
            key,
            wrong: false,
            first_use: false,
            status: answer.as_ref().map_or(0, |a| a.status),
        };
        (record, answer)
    }
}

/// One traffic task: paced requests of every kind to both instances, from its own
/// loopback address.
pub async fn client_task(ctx: Arc<Ctx>, n: usize) -> Vec<Record> {
    let local = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + n as u8));
    let client = web::client(Some(local));
    let period = Duration::from_secs_f64(ctx.cfg.clients as f64 / ctx.cfg.rate as f64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut records = Vec::new();
    while !ctx.stop.load(SeqCst) {
        tick.tick().await;
        let inst = fastrand::usize(..2);
        let wanted = match fastrand::u32(..100) {
            0..50 => Intent::Valid,
            50..58 => Intent::Grace,
            58..70 => Intent::Revoked,
            70..85 => Intent::WrongSecret,
            _ => Intent::UnknownPrefix,
        };
        let now = ctx.clock.now();
        let (intent, (text, key, wrong, first_use)) = {
            let mut model = ctx.model.lock().unwrap();
            match model.pick(wanted, inst, now) {
                Some(pick) => (wanted, pick),
                None => match model.pick(Intent::Valid, inst, now) {
                    Some(pick) => (Intent::Valid, pick),
                    None => (
                        Intent::UnknownPrefix,
                        model.pick(Intent::UnknownPrefix, inst, now).unwrap(),
                    ),
                },
            }
        };
        let writable = key.is_some_and(|k| ctx.model.lock().unwrap().keys[k as usize].writable);
        let (method, path) = if writable && fastrand::u8(..10) == 0 {
            (Method::POST, "/api/signals")
        } else {
            (Method::GET, "/api/account")
        };
        let bearer = format!("Bearer {text}");
        let (mut record, _) = ctx
            .exchange(
                &client,
                inst,
                intent,
                method,
                path,
                &[("authorization", &bearer)],
                "",
                key,
            )
            .await;
        record.wrong = wrong;
        record.first_use = first_use;
        records.push(record);
    }
    records
}

/// A logged-in session on each instance (each has its own cookie key).
pub struct Sessions {
    cookies: [String; 2],
}

pub async fn login(ctx: &Ctx, client: &Client, inst: usize, out: &mut Vec<Record>) -> String {
    for _ in 0..20 {
        let (record, answer) = ctx
            .exchange(
                client,
                inst,
                Intent::Login,
                Method::POST,
                "/login",
                &[("content-type", "application/json")],
                r#"{"username":"demo","password":"demo"}"#,
                None,
            )
            .await;
        out.push(record);
        let cookie = answer.as_ref().and_then(|a| {
            let value = a.headers.get("set-cookie")?.to_str().ok()?;
            Some(value.split(';').next()?.to_owned())
        });
        if let Some(cookie) = cookie {
            return cookie;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("cannot log in on instance {}", NAMES[inst]);
}

impl Sessions {
    pub async fn open(ctx: &Ctx, client: &Client, out: &mut Vec<Record>) -> Self {
        Sessions {
            cookies: [
                login(ctx, client, 0, out).await,
                login(ctx, client, 1, out).await,
            ],
        }
    }
}

/// The management calls, as the logged-in demo user.
pub struct Manager<'a> {
    pub ctx: &'a Ctx,
    pub client: Client,
    pub sessions: Sessions,
    pub records: Vec<Record>,
    named: u64,
}

impl<'a> Manager<'a> {
    pub async fn new(ctx: &'a Ctx) -> Self {
        let client = web::client(None);
        let mut records = Vec::new();
        let sessions = Sessions::open(ctx, &client, &mut records).await;
        Manager {
            ctx,
            client,
            sessions,
            records,
            named: 0,
        }
    }

    async fn call(
        &mut self,
        inst: usize,
        intent: Intent,
        method: Method,
        path: &str,
        body: &str,
        key: Option<u32>,
    ) -> (Record, Option<web::Answer>) {
        let cookie = self.sessions.cookies[inst].clone();
        let headers = [
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        let (record, answer) = self
            .ctx
            .exchange(
                &self.client,
                inst,
                intent,
                method,
                path,
                &headers,
                body,
                key,
            )
            .await;
        self.records.push(record);
        if record.status == 401 {
            // Not expected (the checker reports it); log in again and go on.
            let mut out = Vec::new();
            self.sessions.cookies[inst] = login(self.ctx, &self.client, inst, &mut out).await;
            self.records.extend(out);
        }
        (record, answer)
    }

    /// Mints a named key through `inst`; its index.
    pub async fn mint(&mut self, inst: usize, reserved: bool) -> Option<u32> {
        self.named += 1;
        let body = json!({ "name": format!("soak {}", self.named) }).to_string();
        let (record, answer) = self
            .call(
                inst,
                Intent::Mint,
                Method::POST,
                "/api/user/keys",
                &body,
                None,
            )
            .await;
        self.add_minted(record, answer, reserved)
    }

    fn add_minted(
        &mut self,
        record: Record,
        answer: Option<web::Answer>,
        reserved: bool,
    ) -> Option<u32> {
        let answer = answer.filter(|a| a.status == 201)?;
        let json = answer.json();
        let raw = json["api_key"].as_str()?.to_owned();
        let id = json["id"].as_str().map(str::to_owned);
        let mut model = self.ctx.model.lock().unwrap();
        Some(model.add_key(raw, id, record.end, true, true, reserved))
    }

    /// A key to act on: live, minted by the driver (it has an id).
    fn live_with_id(&self) -> Option<(u32, String)> {
        let model = self.ctx.model.lock().unwrap();
        let candidates: Vec<u32> = model
            .live
            .iter()
            .copied()
            .filter(|&k| model.keys[k as usize].id.is_some())
            .collect();
        let idx = *candidates.get(fastrand::usize(..candidates.len().max(1)))?;
        let id = model.keys[idx as usize].id.clone()?;
        Some((idx, id))
    }

    fn finish(&self, idx: u32, kind: OpKind, record: &Record, ok: bool) {
        let op = Op {
            kind,
            inst: record.inst as usize,
            start: record.start,
            end: record.end,
            ok,
        };
        self.ctx.model.lock().unwrap().finish_op(idx, op);
    }

    pub async fn revoke(&mut self, inst: usize, idx: u32, id: &str) {
        let path = format!("/api/user/keys/{id}");
        let (record, _) = self
            .call(inst, Intent::Revoke, Method::DELETE, &path, "", Some(idx))
            .await;
        self.finish(idx, OpKind::Revoke, &record, record.status == 200);
    }

    async fn rotate(&mut self, inst: usize, idx: u32, id: &str) {
        let grace = [0u64, 1, 2, 3][fastrand::usize(..4)];
        let path = format!("/api/user/keys/{id}/rotate");
        let body = json!({ "grace_seconds": grace }).to_string();
        let (record, answer) = self
            .call(inst, Intent::Rotate, Method::POST, &path, &body, Some(idx))
            .await;
        let ok = record.status == 201;
        self.finish(
            idx,
            OpKind::Rotate {
                grace_us: grace * 1_000_000,
            },
            &record,
            ok,
        );
        if ok {
            self.add_minted(record, answer, false);
        }
    }

    async fn self_revoke(&mut self, inst: usize, idx: u32) {
        let raw = self.ctx.model.lock().unwrap().keys[idx as usize]
            .raw
            .clone();
        let bearer = format!("Bearer {raw}");
        let (record, _) = self
            .ctx
            .exchange(
                &self.client,
                inst,
                Intent::SelfRevoke,
                Method::DELETE,
                "/api/v1/partners/api-key",
                &[("authorization", &bearer)],
                "",
                Some(idx),
            )
            .await;
        self.records.push(record);
        self.finish(idx, OpKind::SelfRevoke, &record, record.status == 200);
    }

    /// One management step, chosen at random (mints when few keys are live, revokes
    /// when many are).
    pub async fn step(&mut self) {
        let inst = fastrand::usize(..2);
        // Uncertain keys first: revoke them again until that succeeds.
        let pending = {
            let model = self.ctx.model.lock().unwrap();
            model
                .pending
                .first()
                .and_then(|&k| Some((k, model.keys[k as usize].id.clone()?)))
        };
        if let Some((idx, id)) = pending {
            self.revoke(inst, idx, &id).await;
            return;
        }
        let live = self.ctx.model.lock().unwrap().live.len();
        let roll = if live < self.ctx.cfg.live_low {
            0
        } else if live > self.ctx.cfg.live_high {
            30
        } else {
            fastrand::u32(..100)
        };
        match roll {
            0..30 => {
                self.mint(inst, false).await;
            }
            30..55 => {
                if let Some((idx, id)) = self.live_with_id() {
                    self.revoke(inst, idx, &id).await;
                }
            }
            55..75 => {
                if let Some((idx, id)) = self.live_with_id() {
                    self.rotate(inst, idx, &id).await;
                }
            }
            75..85 => {
                if let Some((idx, _)) = self.live_with_id() {
                    self.self_revoke(inst, idx).await;
                }
            }
            85..90 => {
                self.call(
                    inst,
                    Intent::View,
                    Method::GET,
                    "/api/v1/partners/api-key",
                    "",
                    None,
                )
                .await;
            }
            90..95 => {
                self.call(inst, Intent::List, Method::GET, "/api/user/keys", "", None)
                    .await;
            }
            _ => {
                // The demo user has named keys, which count as active: 409 expected.
                let (record, answer) = self
                    .call(
                        inst,
                        Intent::CreateActive,
                        Method::POST,
                        "/api/v1/partners/api-key",
                        "",
                        None,
                    )
                    .await;
                self.add_minted(record, answer, false);
            }
        }
    }

    /// Revokes every key of the demo user through `inst` (the one-active shape's
    /// `DELETE` with the session), after retrying uncertain revocations.
    pub async fn revoke_all(&mut self, inst: usize) -> bool {
        let give_up = self.ctx.clock.now() + 20_000_000;
        loop {
            let pending = {
                let model = self.ctx.model.lock().unwrap();
                model
                    .pending
                    .first()
                    .and_then(|&k| Some((k, model.keys[k as usize].id.clone()?)))
            };
            let Some((idx, id)) = pending else { break };
            if self.ctx.clock.now() > give_up {
                break;
            }
            self.revoke(inst, idx, &id).await;
        }
        let (record, _) = self
            .call(
                inst,
                Intent::RevokeAll,
                Method::DELETE,
                "/api/v1/partners/api-key",
                "",
                None,
            )
            .await;
        let ok = record.status == 200;
        let demo: Vec<u32> = {
            let model = self.ctx.model.lock().unwrap();
            (0..model.keys.len() as u32)
                .filter(|&k| model.keys[k as usize].demo)
                .collect()
        };
        for idx in demo {
            self.finish(idx, OpKind::RevokeAll, &record, ok);
        }
        ok
    }
}

/// The management task: one step every `mgmt_interval` until stopped.
pub async fn management_task(ctx: Arc<Ctx>) -> Vec<Record> {
    let mut manager = Manager::new(&ctx).await;
    let mut tick = tokio::time::interval(ctx.cfg.mgmt_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !ctx.stop.load(SeqCst) {
        tick.tick().await;
        manager.step().await;
    }
    manager.records
}

/// Runs a shell command; whether it succeeded (its output is printed if not).
async fn run(what: &str, command: &str) -> bool {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "soak: {what} command failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("soak: {what} command did not run: {e}");
            false
        }
    }
}

/// The two faults, at a third and two thirds of the run: the store restarted (stopped,
/// held down, started) and paused (`SIGSTOP`, held, `SIGCONT`). While each holds, the
/// keys reserved for it are sent once each to their instance (first use there).
pub async fn fault_task(ctx: Arc<Ctx>, reserved: Vec<[Vec<u32>; 2]>) -> (Vec<Fault>, Vec<Record>) {
    let mut faults = Vec::new();
    let mut probe_records = Vec::new();
    let mut probes = JoinSet::new();
    let plans = [
        (
            "restart",
            ctx.cfg.duration / 3,
            ctx.cfg.stop_cmd.clone(),
            ctx.cfg.start_cmd.clone(),
            ctx.cfg.down_for,
        ),
        (
            "pause",
            ctx.cfg.duration * 2 / 3,
            ctx.cfg.pause_cmd.clone(),
            ctx.cfg.resume_cmd.clone(),
            ctx.cfg.pause_for,
        ),
    ];
    for (n, (kind, at, first, second, hold)) in plans.into_iter().enumerate() {
        let (Some(first), Some(second)) = (first, second) else {
            eprintln!("soak: no commands for the {kind}: skipped");
            continue;
        };
        tokio::time::sleep_until(ctx.clock.instant(at.as_micros() as u64).into()).await;
        let cmd_start = ctx.clock.now();
        eprintln!("soak: {kind} at {:.1} s", secs(cmd_start));
        let mut ok = run(kind, &first).await;
        let certain_start = ctx.clock.now();
        // First uses, spread over the first part of the hold so that even a request
        // that waits the store's whole timeout ends before the store is back.
        let window = hold.saturating_sub(Duration::from_millis(2_800));
        for (inst, keys) in reserved[n].iter().enumerate() {
            let keys = keys.clone();
            let step = window / keys.len().max(1) as u32;
            for (j, idx) in keys.into_iter().enumerate() {
                let ctx = ctx.clone();
                let at = Duration::from_micros(certain_start)
                    + Duration::from_millis(200)
                    + step * j as u32;
                probes.spawn(async move {
                    tokio::time::sleep_until(ctx.clock.instant(at.as_micros() as u64).into()).await;
                    let (raw, first_use) = {
                        let mut model = ctx.model.lock().unwrap();
                        let first = model.use_on(idx, inst);
                        (model.keys[idx as usize].raw.clone(), first)
                    };
                    let client = web::client(None);
                    let bearer = format!("Bearer {raw}");
                    let (mut record, _) = ctx
                        .exchange(
                            &client,
                            inst,
                            Intent::Fresh,
                            Method::GET,
                            "/api/account",
                            &[("authorization", &bearer)],
                            "",
                            Some(idx),
                        )
                        .await;
                    record.first_use = first_use;
                    record
                });
            }
        }
        tokio::time::sleep_until((ctx.clock.instant(certain_start) + hold).into()).await;
        let certain_end = ctx.clock.now();
        ok &= run(kind, &second).await;
        let recovered = ctx.clock.now();
        eprintln!(
            "soak: {kind}: store back at {:.1} s (held {:.1} s)",
            secs(recovered),
            secs(certain_end - certain_start)
        );
        faults.push(Fault {
            kind,
            cmd_start,
            certain_start,
            certain_end,
            recovered,
            ok,
        });
        // The probes of this fault are done by now (or soon); their keys join the
        // ordinary traffic afterwards.
        while let Some(done) = probes.join_next().await {
            probe_records.push(done.expect("probe task"));
        }
        let mut model = ctx.model.lock().unwrap();
        for &idx in reserved[n].iter().flatten() {
            model.release(idx);
        }
    }
    (faults, probe_records)
}

/// After everything was revoked: every key on both instances, a few at a time.
pub async fn final_sweep(ctx: Arc<Ctx>) -> Vec<Record> {
    let keys: Vec<(u32, String)> = {
        let model = ctx.model.lock().unwrap();
        model
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u32, k.raw.clone()))
            .collect()
    };
    let keys = Arc::new(keys);
    let next = Arc::new(Mutex::new(0usize));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (ctx, keys, next) = (ctx.clone(), keys.clone(), next.clone());
        tasks.spawn(async move {
            let client = web::client(None);
            let mut records = Vec::new();
            loop {
                let i = {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    *next - 1
                };
                let Some((idx, raw)) = keys.get(i / 2) else {
                    break;
                };
                let inst = i % 2;
                let bearer = format!("Bearer {raw}");
                let (record, _) = ctx
                    .exchange(
                        &client,
                        inst,
                        Intent::FinalSweep,
                        Method::GET,
                        "/api/account",
                        &[("authorization", &bearer)],
                        "",
                        Some(*idx),
                    )
                    .await;
                records.push(record);
            }
            records
        });
    }
    let mut records = Vec::new();
    while let Some(done) = tasks.join_next().await {
        records.extend(done.expect("sweep task"));
    }
    records
}
