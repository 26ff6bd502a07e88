//! Bounded-time fuzzing of the maintainer-script argument parser: any
//! argv is either a Policy call form or a clear error, never a panic; an
//! accepted call form prints as a call of the same script.

use std::ffi::OsString;

use lava_v1_maintscript::args::{parse, Script};
use proptest::prelude::*;

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        Just(Script::Preinst),
        Just(Script::Postinst),
        Just(Script::Prerm),
        Just(Script::Postrm),
        Just(Script::Config),
    ]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("install".to_owned()),
        Just("upgrade".to_owned()),
        Just("configure".to_owned()),
        Just("abort-upgrade".to_owned()),
        Just("abort-remove".to_owned()),
        Just("abort-deconfigure".to_owned()),
        Just("in-favour".to_owned()),
        Just("removing".to_owned()),
        Just("purge".to_owned()),
        Just("remove".to_owned()),
        Just("triggered".to_owned()),
        Just("reconfigure".to_owned()),
        Just(String::new()),
        "[0-9]{1,4}(\\.[0-9]{1,2})?(-[0-9a-z+~.]{1,4})?",
        "[a-z][a-z0-9+.-]{0,8}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn any_argv_parses_or_errs(script in script(), args in proptest::collection::vec(word(), 0..8)) {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        match parse(script, &argv) {
            Ok(action) => {
                let printed = action.to_string();
                prop_assert!(printed.starts_with(script.as_str()), "{printed}");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn non_utf8_is_an_error(script in script(), bytes in proptest::collection::vec(0x80u8..=0xff, 1..8)) {
        use std::os::unix::ffi::OsStringExt;
        let argv = vec![OsString::from("upgrade"), OsString::from_vec(bytes)];
        prop_assert!(parse(script, &argv).is_err());
    }
}
