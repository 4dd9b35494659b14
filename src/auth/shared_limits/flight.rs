//! One store ask per bucket at a time: the requests that find an ask under way wait
//! for it to land, then look at the slice again.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
};

use super::lock;

/// A store ask that other requests of the same bucket wait for.
#[derive(Default)]
pub(super) struct Flight {
    state: Mutex<(bool, Vec<Waker>)>,
}

impl Flight {
    pub(super) fn land(&self) {
        let wakers = {
            let mut state = lock(&self.state);
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Waits for a flight to land.
pub(super) struct Landed(pub(super) Arc<Flight>);

impl Future for Landed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.0.state);
        if state.0 {
            return Poll::Ready(());
        }
        state.1.push(cx.waker().clone());
        Poll::Pending
    }
}
