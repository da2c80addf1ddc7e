//! An async SMTP client on tokio (work in progress: see the issue).
#![forbid(unsafe_code)]
