#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smtp_sansio_fuzz::server_session(data));
