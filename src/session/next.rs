/// `next` if it is a path on this site, safe to send back in a `Location` header after
/// a login; `None` otherwise (then redirect somewhere fixed).
///
/// A login form carries where to go afterwards (`/login?next=/settings/api-keys`), and
/// whoever links to the form chooses it. Redirecting to it unchecked is an open
/// redirect: a phishing link that lands on your real login page and then sends the
/// user to a copy of your site. This admits only a local absolute path:
///
/// - it starts with one `/` (not `//host` nor `/\host`, which browsers read as
///   another host; not `https:`, `javascript:` nor any other scheme; not relative);
/// - it contains no backslash anywhere (browsers read `\` as `/` in http URLs);
/// - it contains visible ASCII only: no control characters (browsers drop tabs and
///   newlines, so `/\t/evil.example` would become `//evil.example`), no spaces, no
///   raw non-ASCII text — percent-encode such paths (`%20`, `%C3%A9`).
///
/// Queries and fragments are kept (`/keys?tab=named#ci`). The path is returned as
/// given, so a redirect to it stays on this host.
///
/// ```
/// use tower_api_key::session::safe_next;
///
/// assert_eq!(safe_next("/settings/api-keys?tab=named"), Some("/settings/api-keys?tab=named"));
/// assert_eq!(safe_next("//evil.example/login"), None);
/// assert_eq!(safe_next("/\\evil.example"), None);
/// assert_eq!(safe_next("https://evil.example"), None);
///
/// // In a login handler: go back where the user was going, else to a fixed page.
/// let next = Some("//evil.example");
/// assert_eq!(next.and_then(safe_next).unwrap_or("/"), "/");
/// ```
pub fn safe_next(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let local = !rest.starts_with('/') && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    local.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_pass_unchanged() {
        for path in [
            "/",
            "/settings/api-keys",
            "/settings/api-keys?tab=named&x=%2F%2Fevil#ci",
            "/a/b/../c",
            "/%2F%2Fevil.example",
            "/caf%C3%A9",
            "/@evil.example",
            "/a//b",
        ] {
            assert_eq!(safe_next(path), Some(path), "{path:?}");
        }
    }

    #[test]
    fn other_hosts_schemes_and_tricks_are_refused() {
        for attack in [
            // other hosts
            "//evil.example",
            "//evil.example/settings",
            "///evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/a\\b",
            // schemes and relative references
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "evil.example",
            "settings",
            "./settings",
            "?next=//evil",
            "#top",
            "",
            // whitespace and controls that browsers drop or that split headers
            " /settings",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/settings\0",
            "/\u{7f}",
            "/a b",
            // raw non-ASCII (percent-encode it instead)
            "/caf\u{e9}",
            "/\u{3000}/evil.example",
            "/\u{ff0f}evil.example",
        ] {
            assert_eq!(safe_next(attack), None, "{attack:?}");
        }
    }
}
