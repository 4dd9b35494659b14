//! What the driver knows: every key it ever held, what was done to it and when, and
//! every answer it got. Times are microseconds since the driver's start (one monotonic
//! clock for every task).

use std::{collections::HashSet, time::Instant};

/// The two instances, by index.
pub const NAMES: [&str; 2] = ["A", "B"];

/// Microseconds since the start.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    pub fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn instant(&self, us: u64) -> Instant {
        self.0 + std::time::Duration::from_micros(us)
    }
}

/// Seconds, for reports.
pub fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// Why a request was sent (the checker judges by the model, not by this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    /// A key believed live.
    Valid,
    /// The old key of a rotation, believed inside its grace period.
    Grace,
    /// A key whose revocation returned.
    Revoked,
    /// A known key's prefix with a wrong secret.
    WrongSecret,
    /// A random key (its prefix is almost surely unknown).
    UnknownPrefix,
    /// A key never used on this instance, sent while the store is down or paused.
    Fresh,
    /// After everything was revoked at the end: every key on both instances.
    FinalSweep,
    Login,
    Mint,
    Revoke,
    Rotate,
    SelfRevoke,
    View,
    List,
    CreateActive,
    RevokeAll,
}

impl Intent {
    /// A key-authenticated API request (not a management call).
    pub fn is_traffic(self) -> bool {
        matches!(
            self,
            Intent::Valid
                | Intent::Grace
                | Intent::Revoked
                | Intent::WrongSecret
                | Intent::UnknownPrefix
                | Intent::Fresh
                | Intent::FinalSweep
        )
    }

    /// The statuses a management call may answer while the store is healthy.
    pub fn expected(self) -> &'static [u16] {
        match self {
            Intent::Login => &[200],
            Intent::Mint | Intent::Rotate => &[201],
            Intent::Revoke | Intent::SelfRevoke | Intent::List => &[200],
            Intent::View | Intent::RevokeAll => &[200, 404],
            Intent::CreateActive => &[201, 409],
            _ => &[],
        }
    }
}

/// One answer (or its absence: status 0).
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub start: u64,
    pub end: u64,
    pub inst: u8,
    pub intent: Intent,
    /// The model's key, for requests with a known key (a wrong-secret variant names
    /// the key whose prefix it uses).
    pub key: Option<u32>,
    /// The secret was altered (or the key is random): must never pass.
    pub wrong: bool,
    /// The first request ever sent with this key to this instance: the instance
    /// cannot have it cached.
    pub first_use: bool,
    pub status: u16,
}

/// An operation that ends a key's life, as the driver saw it.
#[derive(Clone, Copy, Debug)]
pub enum OpKind {
    /// `DELETE /api/user/keys/{id}`.
    Revoke,
    /// `POST /api/user/keys/{id}/rotate` with this grace period.
    Rotate { grace_us: u64 },
    /// `DELETE /api/v1/partners/api-key` with the key's own bearer.
    SelfRevoke,
    /// `DELETE /api/v1/partners/api-key` with the session: every key of the owner.
    RevokeAll,
}

#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub kind: OpKind,
    pub inst: usize,
    pub start: u64,
    pub end: u64,
    /// The call answered success (else its effect is unknown).
    pub ok: bool,
}

/// Where a key stands, for choosing what to send (the checker uses `ops`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum State {
    Live,
    /// Rotated: works until about this time.
    Grace {
        until: u64,
    },
    Revoked,
    /// A revoke or rotation failed: it may or may not have taken effect.
    Uncertain,
}

pub struct Key {
    pub raw: String,
    /// The management id (`None` for the demo keys the quickstart seeded).
    pub id: Option<String>,
    /// When the mint call returned (0 for seeded keys).
    pub minted_end: u64,
    /// Owned by the demo user (whom the driver logs in as).
    pub demo: bool,
    /// Has the `signals:write` scope.
    pub writable: bool,
    /// Kept unused for a fault window's first-use probes.
    pub reserved: bool,
    pub used_on: [bool; 2],
    pub ops: Vec<Op>,
    pub state: State,
}

impl Key {
    /// The public prefix: all a report may show.
    pub fn prefix(&self) -> &str {
        &self.raw[..24]
    }

    /// Before this, the key certainly worked (no revoke or rotation had started, or
    /// the rotation's grace period was still running).
    pub fn valid_until(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op.kind {
                OpKind::Rotate { grace_us } => op.start + grace_us,
                _ => op.start,
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    /// From this time on, instance `inst` must refuse the key: a revocation that
    /// returned, plus the documented cross-instance bound when it went through the
    /// other instance (its own instance drops the key before the call returns).
    pub fn refused_from(&self, inst: usize, bound_us: u64) -> Option<u64> {
        self.ops
            .iter()
            .filter(|op| op.ok)
            .map(|op| {
                let reach = if op.inst == inst { 0 } else { bound_us };
                match op.kind {
                    OpKind::Rotate { grace_us } => op.end + grace_us.max(reach),
                    _ => op.end + reach,
                }
            })
            .min()
    }
}

/// Every key, and lists of them by state for choosing quickly.
#[derive(Default)]
pub struct Model {
    pub keys: Vec<Key>,
    pub live: Vec<u32>,
    pub grace: Vec<u32>,
    pub revoked: Vec<u32>,
    /// Uncertain keys to revoke again once the store answers.
    pub pending: Vec<u32>,
    /// The secret parts (characters 24..) of every key text ever sent or seen,
    /// including wrong-secret variants and random keys: none may be in a log.
    pub secrets: HashSet<String>,
    pub minted: u64,
}

/// A random `pk_live_` key text.
pub fn random_key() -> String {
    let mut key = String::with_capacity(72);
    key.push_str("pk_live_");
    for _ in 0..64 {
        key.push(char::from(b"0123456789abcdef"[fastrand::usize(..16)]));
    }
    key
}

/// The same prefix, another secret: the last 48 characters replaced.
pub fn wrong_secret(raw: &str) -> String {
    loop {
        let other = random_key();
        let candidate = format!("{}{}", &raw[..24], &other[24..]);
        if candidate != raw {
            return candidate;
        }
    }
}

fn remove(list: &mut Vec<u32>, idx: u32) {
    if let Some(pos) = list.iter().position(|&k| k == idx) {
        list.swap_remove(pos);
    }
}

impl Model {
    pub fn add_key(
        &mut self,
        raw: String,
        id: Option<String>,
        minted_end: u64,
        demo: bool,
        writable: bool,
        reserved: bool,
    ) -> u32 {
        let idx = u32::try_from(self.keys.len()).expect("fewer than 2^32 keys");
        self.secrets.insert(raw[24..].to_owned());
        self.keys.push(Key {
            raw,
            id,
            minted_end,
            demo,
            writable,
            reserved,
            used_on: [false; 2],
            ops: Vec::new(),
            state: State::Live,
        });
        if !reserved {
            self.live.push(idx);
        }
        if id_is_some(&self.keys[idx as usize]) {
            self.minted += 1;
        }
        idx
    }

    /// Puts a reserved key into ordinary use.
    pub fn release(&mut self, idx: u32) {
        let key = &mut self.keys[idx as usize];
        if key.reserved {
            key.reserved = false;
            if key.state == State::Live {
                self.live.push(idx);
            }
        }
    }

    /// Marks the key used on `inst`; whether this is its first use there.
    pub fn use_on(&mut self, idx: u32, inst: usize) -> bool {
        let used = &mut self.keys[idx as usize].used_on[inst];
        let first = !*used;
        *used = true;
        first
    }

    /// Moves rotated keys whose grace period is over to the revoked list.
    fn expire_grace(&mut self, now: u64) {
        let mut i = 0;
        while i < self.grace.len() {
            let idx = self.grace[i];
            if let State::Grace { until } = self.keys[idx as usize].state {
                if until < now {
                    self.keys[idx as usize].state = State::Revoked;
                    self.grace.swap_remove(i);
                    self.revoked.push(idx);
                    continue;
                }
            }
            i += 1;
        }
    }

    /// A key for a traffic request of kind `intent` to `inst`: (what to send, the
    /// model's key, whether the text is wrong, first use on this instance).
    pub fn pick(
        &mut self,
        intent: Intent,
        inst: usize,
        now: u64,
    ) -> Option<(String, Option<u32>, bool, bool)> {
        self.expire_grace(now);
        let from =
            |list: &Vec<u32>| (!list.is_empty()).then(|| list[fastrand::usize(..list.len())]);
        match intent {
            Intent::Valid | Intent::Grace | Intent::Revoked => {
                let list = match intent {
                    Intent::Valid => &self.live,
                    Intent::Grace => &self.grace,
                    _ => &self.revoked,
                };
                let idx = from(list)?;
                let first = self.use_on(idx, inst);
                Some((self.keys[idx as usize].raw.clone(), Some(idx), false, first))
            }
            Intent::WrongSecret => {
                let idx = if fastrand::bool() {
                    from(&self.live)
                } else {
                    from(&self.revoked)
                }
                .or_else(|| from(&self.live))?;
                let text = wrong_secret(&self.keys[idx as usize].raw);
                self.secrets.insert(text[24..].to_owned());
                // The variant's lookup caches the real key's record on `inst`.
                self.use_on(idx, inst);
                Some((text, Some(idx), true, false))
            }
            Intent::UnknownPrefix => {
                let text = random_key();
                self.secrets.insert(text[24..].to_owned());
                Some((text, None, true, false))
            }
            _ => None,
        }
    }

    /// Records a revoke-type operation's outcome on `idx` and moves it between lists.
    pub fn finish_op(&mut self, idx: u32, op: Op) {
        let key = &mut self.keys[idx as usize];
        key.ops.push(op);
        let was = key.state;
        let next = match (op.ok, op.kind) {
            (true, OpKind::Rotate { grace_us }) if grace_us > 0 => State::Grace {
                until: op.end + grace_us,
            },
            (true, _) => State::Revoked,
            (false, _) if was == State::Revoked => State::Revoked,
            (false, _) => State::Uncertain,
        };
        key.state = next;
        remove(&mut self.live, idx);
        remove(&mut self.grace, idx);
        remove(&mut self.revoked, idx);
        remove(&mut self.pending, idx);
        match next {
            State::Live => self.live.push(idx),
            State::Grace { .. } => self.grace.push(idx),
            State::Revoked => self.revoked.push(idx),
            State::Uncertain => self.pending.push(idx),
        }
    }
}

fn id_is_some(key: &Key) -> bool {
    key.id.is_some()
}
