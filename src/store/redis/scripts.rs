//! The Lua scripts [`RedisKeyStore`](super::RedisKeyStore) runs, one file each under
//! `scripts/`, every one preceded by the shared `times.lua` prelude.

use std::sync::LazyLock;

use redis::Script;

/// Declares [`Scripts`] and [`SCRIPTS`] from one list of fields and files, so that
/// [`Scripts::all`] (what `migrate` loads) names every script there is.
macro_rules! scripts {
    ($($(#[doc = $doc:literal])* $name:ident: $file:literal,)+) => {
        /// Every Lua script the store runs, one field each.
        pub(super) struct Scripts {
            $($(#[doc = $doc])* pub(super) $name: Script,)+
        }

        impl Scripts {
            /// All of them, for [`RedisKeyStore::migrate`](super::RedisKeyStore::migrate)
            /// to load.
            pub(super) fn all(&self) -> impl Iterator<Item = &Script> {
                [$(&self.$name),+].into_iter()
            }
        }

        /// The scripts, compiled (hashed) once.
        pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
            $($name: with_times(include_str!(concat!("scripts/", $file))),)+
        });
    };
}

scripts! {
    /// Inserts a record, checking its insert rule.
    insert: "insert.lua",
    /// Revokes a record, keeping an earlier revocation.
    revoke: "revoke.lua",
    /// Notes a use unless a later one is stored.
    last_use: "last_use.lua",
    /// An owner's records, as one consistent read.
    list: "list.lua",
    /// Sets or removes one metadata entry.
    set_metadata: "set_metadata.lua",
    /// Leases a slice of a rate-limit bucket.
    lease: "lease.lua",
}

/// Exact comparison of nanosecond times, which every script may use.
const TIMES: &str = include_str!("scripts/times.lua");

fn with_times(body: &str) -> Script {
    Script::new(&[TIMES, body].concat())
}

#[cfg(test)]
mod tests {
    use super::SCRIPTS;

    /// `migrate` loads six different scripts.
    #[test]
    fn all_lists_every_script_once() {
        let hashes: std::collections::HashSet<_> = SCRIPTS
            .all()
            .map(|script| script.get_hash().to_owned())
            .collect();
        assert_eq!(hashes.len(), 6);
    }
}
