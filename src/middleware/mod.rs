//! The plumbing the crate's guards share: one response future and one response body.
//!
//! [`ApiKeyService`](crate::auth::ApiKeyService),
//! [`RequireScope`](crate::auth::RequireScope) and the session guard all decide
//! whether a request may reach the inner service, put what they verified into its
//! extensions, and otherwise answer with the JSON envelope themselves.

mod body;
mod future;
mod header;

pub use body::ResponseBody;

/// Takes the inner service that `poll_ready` drove to readiness, to call later from
/// a response future, and leaves a clone behind for the next `poll_ready`
/// (the clone-and-swap idiom).
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
pub use future::ResponseFuture;
pub(crate) use future::{Admitted, ExtraHeaders};
#[cfg(test)]
pub(crate) use header::test_headers;
pub(crate) use header::OneHeader;
