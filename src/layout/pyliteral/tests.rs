use proptest::prelude::*;

use super::*;

/// `source<TAB>repr(ast.literal_eval(source))`, produced by CPython 3.11
/// (`testdata/gen_pyliteral.py`).
const CASES: &str = include_str!("../testdata/pyliteral_cases.tsv");

#[test]
fn parse_then_repr_matches_cpython_on_every_recorded_case() {
    let mut n = 0;
    for line in CASES.lines() {
        let (src, expected) = line.split_once('\t').expect("tab-separated case");
        let value = PyValue::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(value.repr(), expected, "source {src}");
        // The repr is itself a literal that reads back to the same value.
        assert_eq!(PyValue::parse(expected).unwrap(), value, "repr {expected}");
        n += 1;
    }
    assert!(n > 1000, "only {n} cases");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // CPython: 200 nested brackets parse, 201 are "too many nested parentheses".
    for open in ["[", "(", "{1: "] {
        let close = match open {
            "[" => "]",
            "(" => ",)",
            _ => "}",
        };
        let nested = |n: usize| format!("{}0{}", open.repeat(n), close.repeat(n));
        assert!(PyValue::parse(&nested(200)).is_ok(), "{open} x 200");
        let err = PyValue::parse(&nested(201)).expect_err("201 levels");
        assert!(err.reason.contains("too many nested parentheses"), "{err}");
        // Far deeper than any stack allows: an error, not a stack overflow.
        assert!(PyValue::parse(&nested(1_000_000)).is_err());
    }
    assert!(PyValue::parse(&format!("{}1", "-".repeat(1_000_000))).is_err());
}

#[test]
fn repr_of_constructed_values() {
    let v = PyValue::List(vec![PyValue::Tuple(vec![
        PyValue::Str("ts1".into()),
        PyValue::Int(16384),
        PyValue::Str("/path".into()),
    ])]);
    assert_eq!(v.repr(), "[('ts1', 16384, '/path')]");
    assert_eq!(PyValue::Tuple(vec![PyValue::None]).repr(), "(None,)");
    assert_eq!(PyValue::Tuple(vec![]).repr(), "()");
    assert_eq!(PyValue::Float(f64::INFINITY).repr(), "inf");
    assert_eq!(PyValue::Float(f64::NEG_INFINITY).repr(), "-inf");
    assert_eq!(PyValue::Float(f64::NAN).repr(), "nan");
    assert_eq!(PyValue::Float(2.0).repr(), "2.0");
    assert_eq!(PyValue::Float(1e-5).repr(), "1e-05");
    assert_eq!(PyValue::Float(1.5e16).repr(), "1.5e+16");
    assert_eq!(PyValue::Float(1e100).repr(), "1e+100");
    assert_eq!(PyValue::Float(123.456).repr(), "123.456");
    assert_eq!(repr_str("it's"), "\"it's\"");
    assert_eq!(repr_str("it's \"x\""), "'it\\'s \"x\"'");
    assert_eq!(repr_str("a\nb\\"), "'a\\nb\\\\'");
    assert_eq!(
        PyValue::Dict(vec![(PyValue::Str("k".into()), PyValue::Bool(true))]).repr(),
        "{'k': True}"
    );
}

#[test]
fn python_rejects_these_and_so_do_we() {
    for src in [
        "inf",
        "nan",
        "-(-1)",
        "--1",
        "-True",
        "-'a'",
        "007",
        "'a\rb'",
        "'unterminated",
        "'a\0'",
        "{[1]: 2}",
        "{1, 2}",
        "b'x'",
        "f'x'",
        "1j",
        "1e",
        "[1 2]",
        "(1,",
        "{'a' 1}",
        "'\\x4'",
        "1_",
        "",
        "Truex",
    ] {
        assert!(PyValue::parse(src).is_err(), "{src:?} should be rejected");
    }
}

#[test]
fn what_we_cannot_represent_is_refused_not_mangled() {
    // Python accepts these; a lone surrogate or a huge int has no PyValue.
    for src in ["'\\ud800'", "99999999999999999999", "'\\N{EM DASH}'"] {
        assert!(PyValue::parse(src).is_err(), "{src}");
    }
}

#[test]
fn dict_displays_merge_equal_keys_like_python() {
    let v = PyValue::parse("{1: 'a', True: 'b', 1.0: 'c', 'x': 0}").unwrap();
    assert_eq!(v.repr(), "{1: 'c', 'x': 0}");
}

#[test]
fn truthiness_follows_python() {
    for (src, truthy) in [
        ("None", false),
        ("0", false),
        ("0.0", false),
        ("''", false),
        ("[]", false),
        ("()", false),
        ("{}", false),
        ("False", false),
        ("'0'", true),
        ("[0]", true),
        ("-1", true),
    ] {
        assert_eq!(PyValue::parse(src).unwrap().is_truthy(), truthy, "{src}");
    }
}

#[test]
fn printable_matches_python_on_ascii_edges() {
    assert!(is_printable(' '));
    assert!(is_printable('~'));
    assert!(!is_printable('\x7f'));
    assert!(!is_printable('\u{a0}'));
    assert!(is_printable('é'));
    assert!(!is_printable('\u{200b}'));
}

fn arb_value() -> impl Strategy<Value = PyValue> {
    let leaf = prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        any::<f64>()
            .prop_filter("literal_eval has no inf/nan", |f| f.is_finite())
            .prop_map(PyValue::Float),
        any::<String>().prop_map(PyValue::Str),
        "[ -~]{0,8}".prop_map(PyValue::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
            prop::collection::btree_map("[a-z0-9']{0,6}", inner, 0..6).prop_map(|m| {
                PyValue::Dict(m.into_iter().map(|(k, v)| (PyValue::Str(k), v)).collect())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_of_repr_is_identity(v in arb_value()) {
        let text = v.repr();
        let back = PyValue::parse(&text);
        prop_assert_eq!(back.as_ref().ok(), Some(&v), "repr was {}", text);
    }

    #[test]
    fn float_repr_round_trips_and_is_shortest(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let text = repr_float(f);
        let back: f64 = text.parse().unwrap();
        prop_assert_eq!(back.to_bits(), f.to_bits());
        // Rust's Display also prints the shortest digits: same significant digits.
        let digits = |s: &str| -> String {
            let m = s.split(['e', 'E']).next().unwrap_or("");
            m.chars().filter(char::is_ascii_digit).collect::<String>()
                .trim_start_matches('0').trim_end_matches('0').to_string()
        };
        prop_assert_eq!(digits(&text), digits(&format!("{f:e}")));
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,40}") {
        let _ = PyValue::parse(&s);
    }
}
