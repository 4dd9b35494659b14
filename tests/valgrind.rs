//! A service using the crate runs under valgrind, as users profile and debug theirs.
//!
//! The coarse clock that last use is noted at was read through rustix's own vDSO
//! parser, which reads memory valgrind does not map: the process died of SIGSEGV on
//! its first verified request. The clock now goes through libc. Needs valgrind
//! (Debian: `apt-get install valgrind`; CI installs it).

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tower_api_key::{auth::Authenticator, InMemoryKeyStore};

/// Set in the child process: run the verification instead of starting valgrind.
const CHILD: &str = "TOWER_API_KEY_UNDER_VALGRIND";

#[tokio::test]
async fn a_verified_request_crashed_the_process_under_valgrind() {
    if std::env::var_os(CHILD).is_some() {
        let store = InMemoryKeyStore::new();
        let key = common::mint(&store, "acct_1", &[]).await;
        let auth = Authenticator::new(store);
        let request = common::request(http::Method::GET, "/", Some(key.expose_secret()));
        let (parts, _) = request.into_parts();
        let principal = auth.authenticate(&parts).await.expect("a valid key");
        assert_eq!(principal.owner(), "acct_1");
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        common::skip("valgrind is not installed", "apt-get install valgrind");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new("valgrind")
        .args(["--tool=none", "-q"])
        .arg(exe)
        .args([
            "--exact",
            "a_verified_request_crashed_the_process_under_valgrind",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("valgrind starts");
    // A child stuck under valgrind must not hang the test run.
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().expect("the child's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child under valgrind did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = child.wait_with_output().expect("the child's output");
    assert!(
        run.status.success(),
        "under valgrind: {}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("1 passed"), "the child ran the check: {out}");
}
