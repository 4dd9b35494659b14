//! The plumbing the crate's guards share: one response future and one response body.
//!
//! [`ApiKeyService`](crate::auth::ApiKeyService),
//! [`RequireScope`](crate::auth::RequireScope) and the session guard all decide
//! whether a request may reach the inner service, put what they verified into its
//! extensions, and otherwise answer with the JSON envelope themselves.

mod body;
mod future;

pub use body::ResponseBody;
pub use future::ResponseFuture;
