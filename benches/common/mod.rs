//! Shared by the benches: drive a future that never waits without a runtime.

use std::{
    future::Future,
    pin::pin,
    sync::{Once, OnceLock},
    task::{Context, Poll, Waker},
};

/// Runs a future that is expected to complete on its first poll (a synchronous handler
/// over the in-memory store never waits), so the figures are the code's own cost, not
/// a runtime's. Should one ever pend, it is finished on a current-thread tokio runtime
/// instead, with a warning, rather than spinning.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                eprintln!("warning: a benchmarked future pended; falling back to a tokio runtime")
            });
            static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
            RUNTIME
                .get_or_init(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime")
                })
                .block_on(future)
        }
    }
}
