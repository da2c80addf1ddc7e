//! Test support for the workspace integration tests.
