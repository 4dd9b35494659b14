//! The Redis change feed: the namespace's channel, as the relay subscribes to it.

use std::time::Duration;

use redis::{
    aio::MultiplexedConnection, AsyncCommands, AsyncConnectionConfig, Client, Msg, PushInfo,
    PushKind,
};
use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::{
    key::KeyPrefix,
    store::{
        feed::{ChangeChannel, Heard, Subscription},
        Result, StoreError,
    },
};

/// The change channel of one namespace, on connections of its own.
///
/// The feed uses RESP3 pushes: redis-rs' RESP2 `aio::PubSub` hands messages out only
/// as a `futures` `Stream`, which this crate does not depend on.
pub(super) struct Channel {
    /// Opens the feed's connections (RESP3, for pushes).
    pub(super) client: Client,
    /// `<namespace>:changes`.
    pub(super) name: String,
    pub(super) timeout: Duration,
}

/// A connection subscribed to the change channel, and the messages it receives.
pub(super) struct Pushes {
    conn: MultiplexedConnection,
    pushes: UnboundedReceiver<PushInfo>,
}

impl ChangeChannel for Channel {
    type Subscription = Pushes;

    async fn subscribe(&self) -> Result<Pushes> {
        let (sender, pushes) = mpsc::unbounded_channel();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(sender)
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(StoreError::backend)?;
        conn.subscribe(&self.name)
            .await
            .map_err(StoreError::backend)?;
        Ok(Pushes { conn, pushes })
    }
}

impl Subscription for Pushes {
    async fn next(&mut self) -> Heard {
        match self.pushes.recv().await {
            Some(push) if push.kind != PushKind::Disconnection => {
                published_prefix(push).map_or(Heard::Other, Heard::Key)
            }
            Some(_) | None => Heard::Lost,
        }
    }

    async fn ping(&mut self) -> Result<()> {
        self.conn
            .ping::<String>()
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }
}

/// The prefix a change message carries; `None` for other pushes and for payloads
/// that are not a prefix.
fn published_prefix(push: PushInfo) -> Option<KeyPrefix> {
    let message = Msg::from_push_info(push)?;
    std::str::from_utf8(message.get_payload_bytes())
        .ok()?
        .parse()
        .ok()
}
