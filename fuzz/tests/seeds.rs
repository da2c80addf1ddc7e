//! Replays every seed through its harness without libFuzzer, so a seed that
//! trips an invariant fails `cargo test` here, and checks that the session
//! seeds drive the client as far as they mean to.

use std::fs;
use std::path::Path;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                fs::read(&path).expect("a readable seed"),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

type Harness = fn(&[u8]);

#[test]
fn every_seed_passes_its_harness() {
    let targets: [(&str, Harness); 6] = [
        ("reply", smtp_proto_fuzz::reply),
        ("ehlo", smtp_proto_fuzz::ehlo),
        ("client_session", smtp_proto_fuzz::client_session),
        ("dot_stuff", smtp_proto_fuzz::dot_stuff),
        ("commands", smtp_proto_fuzz::commands),
        ("auth", smtp_proto_fuzz::auth),
    ];
    for (target, run) in targets {
        for (name, data) in seeds(target) {
            eprintln!("{target}/{name}");
            run(&data);
        }
    }
}

#[test]
fn session_seeds_reach_their_end() {
    for (name, data) in seeds("client_session") {
        eprintln!("{name}:");
        let trace: Vec<String> = smtp_proto_fuzz::client_session_trace(&data)
            .into_iter()
            .filter(|l| !l.starts_with("C: ") && !l.starts_with("S: "))
            .collect();
        let expect_quit = !name.starts_with("regress_")
            && !matches!(
                name.as_str(),
                "starttls_injection" | "starttls_rogue_driver" | "lazy_hello_421" | "small_limits"
            );
        if expect_quit {
            assert_eq!(
                trace.last().map(String::as_str),
                Some("QUIT ok 221"),
                "{name} did not end with QUIT: {trace:#?}"
            );
        }
    }
}
