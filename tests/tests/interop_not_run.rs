//! Stands in for the interop tests (`tests/tests/interop.rs`) where they are
//! not compiled: the interop servers' settings were not in the environment
//! when the tests were built (see `tests/build.rs`). The ignore reason is
//! the one line `cargo test` prints about them.

#![cfg(not(interop_servers))]

/// Never run: its ignore reason says how to run the interop tests.
#[test]
#[ignore = "interop tests not compiled: no interop servers in the environment. \
            Run them: tests/interop/install.sh; tests/interop/start-servers.sh DIR; \
            set -a; . DIR/env; set +a; cargo test --workspace (see tests/interop/README.md)"]
fn interop_tests_not_run_without_servers() {}
