//! Arbitrary key text against the verifier over real records (live, test mode,
//! retiring, revoked, expired, restricted): never a panic, and an accept only for the
//! exact text of a key that works.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tower_api_key::auth::Authenticator;
use tower_api_key_fuzz::{authenticator, block_on, check_accepted};

static AUTH: LazyLock<Authenticator> = LazyLock::new(authenticator);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(principal) = block_on(AUTH.authenticate_outside_http(text)) {
        check_accepted(&principal, text);
    }
});
