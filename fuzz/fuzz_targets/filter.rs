//! The filter parser must never panic (nor overflow its stack), and a filter that parses
//! must evaluate on any test case.
#![no_main]

use expedite::gate::{Filter, Outcome, TestCase};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = Filter::parse(text) {
        let case = TestCase {
            name: "Charge".into(),
            class_name: "Shop.PaymentTests".into(),
            fully_qualified_name: "Shop.PaymentTests.Charge".into(),
            categories: vec!["Critical".into()],
            traits: vec![("Priority".into(), "1".into())],
            outcome: Outcome::Passed,
            message: String::new(),
            source_file: None,
            line: None,
        };
        let _ = filter.matches(&case);
    }
});
