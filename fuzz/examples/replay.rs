//! Replays inputs through a harness without libFuzzer, printing what the
//! scripted session saw: `cargo run --example replay -- TARGET FILE...`.

use std::panic;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, files)) = args.split_first() else {
        eprintln!("usage: replay TARGET FILE...");
        std::process::exit(2);
    };
    let run: fn(&[u8]) = match target.as_str() {
        "reply" => smtp_sansio_fuzz::reply,
        "ehlo" => smtp_sansio_fuzz::ehlo,
        "client_session" => |d| drop(smtp_sansio_fuzz::client_session_trace(d)),
        "dot_stuff" => smtp_sansio_fuzz::dot_stuff,
        "commands" => smtp_sansio_fuzz::commands,
        "auth" => smtp_sansio_fuzz::auth,
        "server_command" => smtp_sansio_fuzz::server_command,
        "server_session" => smtp_sansio_fuzz::server_session_print,
        other => {
            eprintln!("unknown target {other}");
            std::process::exit(2);
        }
    };
    let mut failed = 0;
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        println!(
            "{file}: {} bytes {:?}",
            data.len(),
            String::from_utf8_lossy(&data)
        );
        if panic::catch_unwind(|| run(&data)).is_err() {
            failed += 1;
        }
    }
    std::process::exit(i32::from(failed > 0));
}
