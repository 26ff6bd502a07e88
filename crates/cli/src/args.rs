//! Arguments several commands share, parsed into their types by clap.

use std::time::Duration;

use clap::Args;

/// `--lock-timeout SECONDS` (`drop`, `jobs rm`).
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct LockTimeout {
    /// Seconds to wait for each table lock before giving up.
    #[arg(long = "lock-timeout", value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub(crate) lock_timeout: Duration,
}

/// `--json` (every command that reports).
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Json {
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{value}` is not a whole number of seconds"))
}

/// `--older-than <N>h|<N>d`, as `lava-server manage jobs rm` takes it.
#[derive(Debug, Clone)]
pub(crate) struct Age {
    /// As given (for the journal).
    pub(crate) text: String,
    /// As a duration.
    pub(crate) duration: Duration,
}

/// Parses an [`Age`] (clap's value parser).
pub(crate) fn age(value: &str) -> Result<Age, String> {
    lava_v1_core::jobs::parse_age(value)
        .map(|duration| Age { text: value.to_owned(), duration })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_arguments() {
        assert_eq!(seconds("10"), Ok(Duration::from_secs(10)));
        assert!(seconds("ten").is_err());
        assert_eq!(age("36h").unwrap().duration, Duration::from_secs(36 * 3600));
        assert!(age("2w").unwrap_err().contains("is not an age"));
    }
}
