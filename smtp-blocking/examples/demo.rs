//! The README's first command: a real send, end to end, with nothing
//! installed but the Rust toolchain.
//!
//! ```sh
//! cargo run -p smtp-blocking --example demo
//! ```
//!
//! Starts an in-process SMTP server on loopback with a certificate generated
//! on the fly, then sends a message through it with STARTTLS (certificate
//! verified against the throw-away CA), AUTH PLAIN and PIPELINING, printing
//! the transcript and the message as the server received it. It is
//! `smtp-send` without `--server`, and takes the same options
//! (`cargo run -p smtp-blocking --example demo -- --help`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
