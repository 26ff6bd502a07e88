//! Is there V1 data to protect?  Answered before asking anything.

use lava_v1_core::detect;
use lava_v1_core::media;

use crate::Context;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// No V1 rows in the database and no V1 files: nothing to ask about.
    None,
    /// V1 data exists; the text summarises it for the question.
    Found(String),
    /// It could not be told (the database is unreachable, the
    /// configuration unreadable…); the text says why.  Treated as present.
    Unknown(String),
}

impl Presence {
    /// Must the admin decide?
    pub fn needs_decision(&self) -> bool {
        !matches!(self, Presence::None)
    }

    /// The text for the question's `${details}`.
    pub fn details(&self) -> String {
        match self {
            Presence::None => String::new(),
            Presence::Found(s) => format!("Found: {s}."),
            Presence::Unknown(why) => {
                format!("The database could not be checked for V1 data ({why}); it may hold V1 data.")
            }
        }
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
        let mut tx = client.build_transaction().read_only(true).start().map_err(|e| {
            lava_v1_core::Error::Db { doing: "starting a read-only transaction".into(), source: e }
        })?;
        detect::inspect(&mut tx, &db.describe(), true)
    });
    match state {
        Ok(s) => {
            let rows: i64 = s.v1_tables.iter().filter_map(|t| t.rows).sum();
            if rows > 0 {
                found.insert(0, format!("{} V1 tables holding {rows} rows", s.v1_tables.len()));
            }
            let linked = s.results_bundle_column.as_ref().and_then(|c| c.jobs_with_bundle).unwrap_or(0);
            if linked > 0 && rows == 0 {
                found.insert(0, format!("{linked} jobs linked to V1 bundles"));
            }
        }
        Err(e) => return Presence::Unknown(one_line(&e)),
    }
    if found.is_empty() {
        Presence::None
    } else {
        Presence::Found(found.join(", "))
    }
}

/// An error and its causes on one line (debconf text is one paragraph).
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    if let Some((head, _hint)) = text.split_once("\n\nhint: ") {
        text = head.to_owned();
    }
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace('\n', " ")
}
