//! Arbitrary request headers against the verifier: never a panic, and nothing accepted
//! but exactly one credential that is exactly a live key.
//!
//! Input: lines (`\n`), each `name:value` with the value's raw bytes; names and values
//! that `http` refuses are skipped, as a server would never hand them over.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_api_key::auth::Authenticator;
use tower_api_key_fuzz::{authenticator, block_on, check_accepted, reference_token};

static AUTH: LazyLock<Authenticator> = LazyLock::new(authenticator);

fuzz_target!(|data: &[u8]| {
    let mut request = http::Request::new(());
    let headers = request.headers_mut();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let (parts, ()) = request.into_parts();
    if let Ok(principal) = block_on(AUTH.authenticate(&parts)) {
        let token = reference_token(&parts.headers)
            .unwrap_or_else(|| panic!("accepted headers the specification refuses"));
        check_accepted(&principal, &token);
    }
});
