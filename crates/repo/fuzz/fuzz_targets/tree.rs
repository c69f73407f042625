//! Fuzz target: `bulwark_repo::fuzzing::parse_tree` (see ../README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark_repo::fuzzing::parse_tree(data));
