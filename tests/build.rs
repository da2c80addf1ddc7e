//! Compiles the interop tests only where the interop servers' settings are
//! in the environment (`tests/interop/start-servers.sh DIR` writes them to
//! `DIR/env`), or where CI demands them (`SMTP_INTEROP=required`). Elsewhere
//! `cargo test` shows them as not run (one ignored test saying how to run
//! them) instead of counting hundreds of skips as passes.

fn main() {
    const VARS: [&str; 4] = ["SMTP_INTEROP", "SMTP_USER", "SMTP_PASSWORD", "SMTP_CA"];
    for var in VARS {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(interop_servers)");
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let required = std::env::var("SMTP_INTEROP").is_ok_and(|v| v == "required");
    if required || (set("SMTP_USER") && set("SMTP_CA")) {
        println!("cargo::rustc-cfg=interop_servers");
    }
}
