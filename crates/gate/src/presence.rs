//! Is there V1 data to protect?  Answered before asking anything.

use lava_v1_core::detect;
use lava_v1_core::media;

use lava_v1_core::explain::one_line;

use crate::Context;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// No V1 rows in the database and no V1 files: nothing to ask about.
    None,
    /// V1 data exists: what was found, and (outside a maintenance
    /// window) what is still running, both for the question.
    Found(String, Option<String>),
    /// It could not be told (the database is unreachable, the
    /// configuration unreadable…); the text says why.  Treated as present.
    Unknown(String),
}

impl Presence {
    /// Must the admin decide?
    pub fn needs_decision(&self) -> bool {
        !matches!(self, Presence::None)
    }

    /// The text for the question's `${details}`: one line, no control
    /// characters (it becomes one debconf protocol command; names from the
    /// database and the file system are not to be trusted).
    pub fn details(&self) -> String {
        let text = match self {
            Presence::None => String::new(),
            Presence::Found(s, None) => format!("Found: {s}."),
            Presence::Found(s, Some(window)) => format!(
                "Found: {s}. {window} The removal is one transaction and safe while LAVA runs, \
                 but running V1 jobs lose their results: the upstream upgrade page recommends \
                 a maintenance window (`lava-v1 preflight` checks for one)."
            ),
            Presence::Unknown(why) => {
                format!("The database could not be checked for V1 data ({why}); it may hold V1 data.")
            }
        };
        protocol_safe(&text)
    }
}

/// Looks at the database and the media root of the instance.
pub fn check(ctx: &Context) -> Presence {
    let mut found = Vec::new();
    match ctx.media_root() {
        Ok(root) => {
            let dirs = media::v1_media(&root);
            let files: u64 = dirs.iter().map(|d| d.files + d.symlinks).sum();
            if dirs.iter().any(media::MediaDir::has_data) {
                found.push(format!("{files} V1 files under {}", root.display()));
            }
        }
        Err(e) => return Presence::Unknown(one_line(&e)),
    }
    let db = match ctx.paths.database() {
        Ok(db) => db,
        Err(e) => return Presence::Unknown(one_line(&e)),
    };
    let state = lava_v1_core::db::connect(&db).and_then(|mut client| {
        let mut tx = lava_v1_core::db::read_only(&mut client)?;
        let state = detect::inspect(&mut tx, &db.describe(), true)?;
        let window = lava_v1_core::preflight::check(&mut tx, &state)?.window_summary(3);
        Ok((state, window))
    });
    let window = match state {
        Ok((s, window)) => {
            let rows: i64 = s.v1_tables.iter().filter_map(|t| t.rows).sum();
            if rows > 0 {
                found.insert(0, format!("{} V1 tables holding {rows} rows", s.v1_tables.len()));
            }
            let linked = s.results_bundle_column.as_ref().and_then(|c| c.jobs_with_bundle).unwrap_or(0);
            if linked > 0 && rows == 0 {
                found.insert(0, format!("{linked} jobs linked to V1 bundles"));
            }
            window
        }
        Err(e) => return Presence::Unknown(one_line(&e)),
    };
    if found.is_empty() {
        Presence::None
    } else {
        Presence::Found(found.join(", "), window)
    }
}

/// `text` as one line without control characters: each one (newline,
/// carriage return, NUL, escape…) is written as its Rust escape (`\n`),
/// so nothing read from the database or the file system can end a debconf
/// protocol command or start another.
pub fn protocol_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_one_protocol_line_whatever_the_names_hold() {
        let hostile = "/srv/media\nSET lava-server/removev1 true\r\0\x1b[2J\u{85}end";
        let p = Presence::Found(
            format!("12 V1 files under {hostile}"),
            Some(format!("1 devices are online (dev\n{hostile} (idle)).")),
        );
        let d = p.details();
        assert!(!d.chars().any(char::is_control), "{d:?}");
        assert!(d.contains("/srv/media\\nSET lava-server/removev1 true\\r\\u{0}"), "{d}");
        assert_eq!(protocol_safe("plain text: ok"), "plain text: ok");
        assert_eq!(Presence::Unknown("a\nb".into()).details().lines().count(), 1);
    }
}
