//! `smtp-send`: send one message from the command line, swaks-style.
//!
//! ```sh
//! cargo run -p smtp-blocking --example smtp-send -- --help
//! # the embedded demo: a loopback server, STARTTLS, AUTH PLAIN, PIPELINING
//! cargo run -p smtp-blocking --example smtp-send
//! # a real server
//! SMTP_PASSWORD=... cargo run -p smtp-blocking --example smtp-send -- \
//!     --server mail.example.com:587 --auth plain --user me@example.com \
//!     --from me@example.com --to you@example.org --header 'Subject: hello'
//! ```
//!
//! The logic lives in `cli/`, shared with the `demo` example and with the
//! tests in `smtp-blocking/tests/cli.rs`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
