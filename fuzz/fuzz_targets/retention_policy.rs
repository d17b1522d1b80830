//! The retention policy parser (`retention::parse_policy`, Barman's syntax and
//! CloudNativePG's shorthand): never panics; what it accepts prints back to a
//! text that parses to the same policy.
#![no_main]

use barnacle::retention::{cnpg_to_barman, parse_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cnpg_to_barman(text);
    match parse_policy(text) {
        Ok(policy) => {
            let printed = policy.to_string();
            let again = parse_policy(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
            assert_eq!(again, policy, "{text:?} → {printed:?}");
        }
        Err(e) => {
            let _ = (e.exit_code(), e.barman_log());
        }
    }
});
