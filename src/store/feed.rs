//! The change feed's relay: the one reconnect loop every store with a change channel
//! (PostgreSQL `LISTEN/NOTIFY`, Redis pub/sub) runs for [`KeyStore::watch`].
//!
//! A store says how to subscribe ([`ChangeChannel`]) and how to hear and ping one
//! subscription ([`Subscription`]); the relay owns the rest: the tick, the backoff,
//! [`Change::All`] after every (re)subscription, [`Change::Disconnected`] when the
//! connection is lost, and the end once the listener is dropped.
//!
//! [`KeyStore::watch`]: super::KeyStore::watch

use std::{future::Future, ops::ControlFlow, sync::Weak, time::Duration};

use super::{timeout::bounded, Change, ChangeListener, Result, Watching};
use crate::key::KeyPrefix;

/// A store's change channel: what the relay subscribes to, again after every loss.
pub(crate) trait ChangeChannel: Send + Sync + 'static {
    /// One subscribed connection.
    type Subscription: Subscription;

    /// Connects and subscribes. The relay bounds the call by the store's timeout.
    fn subscribe(&self) -> impl Future<Output = Result<Self::Subscription>> + Send;
}

/// One subscribed connection to a change channel.
pub(crate) trait Subscription: Send {
    /// The next thing the connection hears. Cancel-safe: the relay gives up waiting
    /// on every tick, and nothing heard may be lost by that.
    fn next(&mut self) -> impl Future<Output = Heard> + Send;

    /// Checks that a quiet connection still answers. The relay bounds the call by the
    /// store's timeout.
    fn ping(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// What a [`Subscription`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// The record with this prefix changed.
    Key(KeyPrefix),
    /// Something else (a confirmation, a payload that is not a prefix): ignored.
    Other,
    /// The connection is gone.
    Lost,
}

/// The relay's timing: how often a quiet feed checks its listener and connection, and
/// how long it waits before subscribing again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// How often a quiet feed checks that its listener lives and its server answers.
    tick: Duration,
    /// The first wait after a failure; it doubles after every failure in a row…
    first_backoff: Duration,
    /// …up to this.
    last_backoff: Duration,
}

impl Pace {
    /// The stores' pace: a tick every second, reconnecting after 100 ms, doubling up
    /// to 2 s.
    pub(crate) const DEFAULT: Pace = Pace {
        tick: Duration::from_secs(1),
        first_backoff: Duration::from_millis(100),
        last_backoff: Duration::from_secs(2),
    };
}

/// The waits between attempts to subscribe: doubling from the first to the last, back
/// to the first after a success.
#[derive(Debug)]
struct Backoff {
    pace: Pace,
    next: Duration,
}

impl Backoff {
    fn new(pace: Pace) -> Self {
        Backoff {
            pace,
            next: pace.first_backoff,
        }
    }

    /// The wait before the next attempt.
    fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.pace.last_backoff);
        wait
    }

    fn reset(&mut self) {
        self.next = self.pace.first_backoff;
    }
}

/// Starts relaying `channel` to `listener` on the current tokio runtime; outside one
/// there is nothing to run it on, and the answer is [`Watching::Unsupported`].
pub(crate) fn watch(
    channel: impl ChangeChannel,
    timeout: Duration,
    listener: Weak<dyn ChangeListener>,
) -> Watching {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(relay(channel, timeout, Pace::DEFAULT, listener));
            Watching::Started
        }
        Err(_) => Watching::Unsupported,
    }
}

/// Relays `channel` to `listener` until it is dropped, subscribing again after every
/// loss. After every (re)subscription it reports [`Change::All`] (changes may have
/// been missed), and [`Change::Disconnected`] as soon as the connection is lost or a
/// quiet connection stops answering a ping — so a cache never trusts what it holds
/// while it cannot hear.
async fn relay(
    channel: impl ChangeChannel,
    timeout: Duration,
    pace: Pace,
    listener: Weak<dyn ChangeListener>,
) {
    let mut backoff = Backoff::new(pace);
    let mut subscribed = false;
    while listener.strong_count() > 0 {
        if let Ok(mut subscription) = bounded(timeout, channel.subscribe()).await {
            backoff.reset();
            if std::mem::replace(&mut subscribed, true) {
                crate::telemetry::feed_reconnected();
            }
            match listener.upgrade() {
                Some(listener) => listener.changed(Change::All),
                None => return,
            }
            if forward(&mut subscription, &listener, timeout, pace.tick)
                .await
                .is_break()
            {
                return;
            }
            if let Some(listener) = listener.upgrade() {
                listener.changed(Change::Disconnected);
            }
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// Hands each changed prefix to the listener. Breaks once the listener is gone;
/// continues (to subscribe again) once the connection is.
async fn forward(
    subscription: &mut impl Subscription,
    listener: &Weak<dyn ChangeListener>,
    timeout: Duration,
    tick: Duration,
) -> ControlFlow<()> {
    loop {
        let heard = tokio::time::timeout(tick, subscription.next()).await;
        let Some(listener) = listener.upgrade() else {
            return ControlFlow::Break(());
        };
        match heard {
            Ok(Heard::Key(prefix)) => listener.changed(Change::Key(prefix)),
            Ok(Heard::Other) => {}
            Ok(Heard::Lost) => return ControlFlow::Continue(()),
            Err(_quiet) => {
                // Not holding the listener while waiting: dropping it ends the feed.
                drop(listener);
                if bounded(timeout, subscription.ping()).await.is_err() {
                    return ControlFlow::Continue(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex, PoisonError},
        time::Duration,
    };

    use super::{relay, Backoff, ChangeChannel, Heard, Pace, Subscription};
    use crate::{
        key::{ApiKey, KeyMode},
        store::{Change, ChangeListener, Result, StoreError},
    };

    const PACE: Pace = Pace {
        tick: Duration::from_millis(20),
        first_backoff: Duration::from_millis(10),
        last_backoff: Duration::from_millis(40),
    };

    #[test]
    fn backoff_doubles_up_to_the_last_and_resets() {
        let mut backoff = Backoff::new(Pace::DEFAULT);
        let waits: Vec<_> = (0..7).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }

    /// What one attempt to subscribe gives.
    enum Attempt {
        Refused,
        /// Hears these, then waits; pings answer while `pings_answer`.
        Subscribed {
            heard: Vec<Heard>,
            pings_answer: bool,
        },
    }

    /// A channel that plays its attempts in order, then refuses.
    #[derive(Clone)]
    struct Fake {
        attempts: Arc<Mutex<VecDeque<Attempt>>>,
        tries: Arc<Mutex<u32>>,
    }

    struct FakeSubscription {
        heard: VecDeque<Heard>,
        pings_answer: bool,
    }

    impl ChangeChannel for Fake {
        type Subscription = FakeSubscription;

        async fn subscribe(&self) -> Result<FakeSubscription> {
            *self.tries.lock().unwrap_or_else(PoisonError::into_inner) += 1;
            let attempt = self
                .attempts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            match attempt {
                Some(Attempt::Subscribed {
                    heard,
                    pings_answer,
                }) => Ok(FakeSubscription {
                    heard: heard.into(),
                    pings_answer,
                }),
                _ => Err(StoreError::backend("refused")),
            }
        }
    }

    impl Subscription for FakeSubscription {
        async fn next(&mut self) -> Heard {
            match self.heard.pop_front() {
                Some(heard) => heard,
                None => std::future::pending().await,
            }
        }

        async fn ping(&mut self) -> Result<()> {
            if self.pings_answer {
                Ok(())
            } else {
                Err(StoreError::Timeout)
            }
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Change>>);

    impl ChangeListener for Recorder {
        fn changed(&self, change: Change) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(change);
        }
    }

    impl Recorder {
        fn heard(&self) -> Vec<Change> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    #[tokio::test]
    async fn relay_reconnects_with_backoff_and_ends_with_its_listener() {
        let prefix = ApiKey::generate(KeyMode::Live).expect("rng").prefix();
        let fake = Fake {
            attempts: Arc::new(Mutex::new(VecDeque::from([
                Attempt::Refused,
                Attempt::Refused,
                Attempt::Subscribed {
                    heard: vec![Heard::Other, Heard::Key(prefix), Heard::Lost],
                    pings_answer: true,
                },
                // Quiet, and its pings fail: lost at the first tick.
                Attempt::Subscribed {
                    heard: vec![],
                    pings_answer: false,
                },
                Attempt::Subscribed {
                    heard: vec![Heard::Key(prefix)],
                    pings_answer: true,
                },
            ]))),
            tries: Arc::default(),
        };
        let recorder = Arc::new(Recorder::default());
        let listener: Arc<dyn ChangeListener> = recorder.clone();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(relay(
            fake.clone(),
            Duration::from_millis(50),
            PACE,
            Arc::downgrade(&listener),
        ));

        let expected = [
            Change::All,
            Change::Key(prefix),
            Change::Disconnected,
            Change::All,
            Change::Disconnected,
            Change::All,
            Change::Key(prefix),
        ];
        while recorder.heard().len() < expected.len() {
            assert!(started.elapsed() < Duration::from_secs(5), "stuck");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(recorder.heard(), expected);
        assert_eq!(*fake.tries.lock().expect("tries"), 5);
        // Two refusals waited 10 and 20 ms, each loss 10 (reset by the success
        // before it), and the quiet connection a tick, 20: at least 70 ms.
        assert!(started.elapsed() >= Duration::from_millis(70));

        // A quiet feed notices its listener's end at the next tick.
        drop((listener, recorder));
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the relay ends with its listener")
            .expect("no panic");
    }
}
