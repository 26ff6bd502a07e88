//! Bounded-time fuzzing of the debconf reply handling: whatever a
//! (broken) frontend answers, every command returns a value or an error,
//! never a panic, and the client never reads past one reply per command.

use std::io::Cursor;

use lava_v1_debconf::{Debconf, Priority};
use proptest::prelude::*;

fn reply_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}( [^\n]{0,30})?",
        "1 ([^\n\\\\]|\\\\[n\\\\a-z]){0,20}",
        "[^\n]{0,20}",
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_reply_stream_is_handled(
        lines in proptest::collection::vec(reply_line(), 0..12),
        escape in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut input = lines.join("\n").into_bytes();
        input.push(b'\n');
        input.extend(tail);
        let mut dc = Debconf::new(Cursor::new(input), Vec::new());
        if escape {
            let _ = dc.capb(&["escape"]);
        }
        let _ = dc.version("2.0");
        let _ = dc.get("lava-server/removev1");
        let _ = dc.input(Priority::High, "lava-server/removev1");
        let _ = dc.go();
        let _ = dc.metaget("lava-server/removev1", "description");
        let _ = dc.fget("lava-server/removev1", "seen");
        let _ = dc.set("lava-server/removev1", "false");
        let _ = dc.exist("lava-server/removev1");
        let (_, sent) = dc.into_inner();
        // One line per command sent, each newline-terminated.
        let text = String::from_utf8(sent).unwrap();
        prop_assert!(text.is_empty() || text.ends_with('\n'));
    }
}
