//! `smtp-send`: send one message from the command line, swaks-style
//! (feature `cli`).
//!
//! ```sh
//! cargo install --path smtp-blocking --features cli   # or: cargo run -p smtp-blocking --features cli --bin smtp-send --
//! smtp-send --help
//! # the embedded demo: a loopback server, STARTTLS, AUTH PLAIN, PIPELINING
//! smtp-send
//! # a real server (port 587: submission with STARTTLS)
//! SMTP_PASSWORD=... smtp-send --server mail.example.com --auth plain \
//!     --user me@example.com --from me@example.com --to you@example.org \
//!     --subject hello --attach report.pdf
//! ```
//!
//! The logic lives in `cli/`, shared with the tests in
//! `smtp-blocking/tests/cli.rs`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
