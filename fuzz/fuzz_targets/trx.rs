//! The TRX parser must never panic, whatever the bytes: it either parses or returns an error
//! naming what is wrong.
#![no_main]

use expedite::gate::{Format, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_bytes(Format::Trx, data);
});
