//! Fuzz harnesses for `smtp-sansio`.
//!
//! Every target in `fuzz_targets/` is one line that calls a function here,
//! so the harnesses can also run as ordinary code (the seed replay test in
//! `tests/seeds.rs` does). Each function takes the raw fuzzer input, turns
//! it into calls on the core and checks an invariant; a violated invariant is
//! a panic with a message that says what broke.
//!
//! | target | input | invariant |
//! |---|---|---|
//! | [`reply`] | header + server bytes | no panic; replies and errors are the same whatever the chunking; memory stays within [`Limits`](smtp_sansio::Limits); `Display` escapes every control character |
//! | [`ehlo`] | EHLO reply text | no panic; capabilities are self-consistent and bounded (256 lines, 64 AUTH names), nothing dropped under the bounds |
//! | [`client_session`] | header + server bytes (with the driver's marks) | a scripted user (`send`, `establish`, the step commands, STARTTLS, AUTH) and a run-loop driver with a virtual clock: no panic, bounded steps, every command and message reported once, nothing stalls, refused calls change nothing, only valid lines and correctly framed bodies are written, the fatal error is sticky, timeouts only at deadlines |
//! | [`dot_stuff`] | header + body | stuffing is chunking-independent, reversible, never ends early |
//! | [`commands`] | selector + strings | every argument is refused or becomes exactly one CRLF line, with no Unicode line or format control, no `<`/`>` inside a mailbox, and no MAIL/RCPT line over 512 octets plus its extensions' allowances |
//! | [`server_command`] | client lines (split on LF) | the server's `parse_command`: no panic, deterministic, trailing blanks ignored; nothing accepted with CR, LF or NUL, no control in a parsed string, no `<`/`>` in an address; the canonical form of an accepted command parses back to it; errors are 5xx with printable one-line text and an escaped `Display` |
//! | [`server_session`] | header + the application's decisions + client bytes (with the driver's marks) | the server session under a driver with a virtual clock, STARTTLS handshakes and deferred answers: no panic, bounded steps; only whole, well-formed, printable reply lines, bounded per input byte, none after `Closed` or EOF; the transaction is the one the answers made; `Mail`/`Rcpt`/`Auth`/`Body`/`Message` only when allowed, bodies within `max_message_size` and, for DATA, `dot_unstuff` of the raw bytes; wrong calls refused; deadlines never before the last input or answer, and a dribbled line never moves them later |
//! | [`auth`] | header + credentials + challenges | mechanisms answer every challenge without panic; passwords and bearer tokens go only over TLS or to loopback (or with the opt-out); the session only writes base64 or `*` |
//!
//! Inputs start with a small fixed header (see [`input::header`]) so the
//! rest stays contiguous protocol text that the dictionary (`smtp.dict`) and
//! the seeds (`seeds/<target>/`) can shape.

pub mod alloc;
mod auth;
mod body;
mod commands;
pub mod input;
pub mod known;
mod parsers;
mod server_command;
mod server_session;
mod session;
pub mod wire;

pub use auth::auth;
pub use body::dot_stuff;
pub use commands::commands;
pub use parsers::{ehlo, reply};
pub use server_command::server_command;
pub use server_session::{server_session, server_session_print, server_session_trace};
pub use session::{client_session, client_session_trace};
