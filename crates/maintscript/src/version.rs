//! Debian package versions, ordered the way dpkg orders them.
//!
//! [`Version`] wraps a [`debversion::Version`] (which implements dpkg's
//! `verrevcmp` ordering) and adds the strict syntax check of
//! `dpkg --validate-version`, so that a garbage argument to a maintainer
//! script is rejected instead of being compared.
//!
//! # "Before a release"
//!
//! The V1-removal upgrade must know whether the package is being upgraded
//! from a version *before* 2017.12. With dpkg ordering
//! `2017.12~rc1 < 2017.12 < 2017.12-1`, so a plain `old < "2017.12"` would
//! count the 2017.12 release candidates as "before", while `old < "2017.12-1"`
//! would also count `2017.12-0.1` and `2017.12` (native) as "before".
//!
//! This crate follows the convention of `dpkg-maintscript-helper` (its
//! `LASTVERSION~` form): **a version is before release `R` when it is lower
//! than `R~`**, i.e. lower than every pre-release and every Debian revision of
//! `R`. So, for `R = 2017.12`:
//!
//! | old version          | before 2017.12? |
//! |----------------------|-----------------|
//! | `2017.10-1`          | yes             |
//! | `2017.10-1+deb9u1`   | yes             |
//! | `2017.11-1`          | yes             |
//! | `2017.11.99`         | yes             |
//! | `2017.12~`           | no (equal to the cut-off) |
//! | `2017.12~rc1-1`      | no (a pre-release of 2017.12 already has its code) |
//! | `2017.12`, `2017.12-1`, `2018.01-1` | no |
//! | `1:2016.1`           | no (any epoch beats no epoch) |
//!
//! See [`Version::is_before`] and [`is_before`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The release whose upgrade removes the V1 data.
pub const V1_REMOVAL_RELEASE: &str = "2017.12";

/// A syntactically valid Debian version string.
///
/// * [`FromStr`]/[`Version::parse`] accept exactly what
///   `dpkg --validate-version` accepts (no surrounding blanks either).
/// * [`Display`](fmt::Display) prints the string as it was given.
/// * [`Ord`]/[`Eq`] follow dpkg: `1.0` == `1.0-0` == `0:1.0` == `1.00`.
///   Because equality is by dpkg ordering and not by text, `Version` does
///   not implement `Hash`.
#[derive(Clone)]
pub struct Version {
    text: String,
    parsed: debversion::Version,
}

impl Version {
    /// Parses and validates a version string.
    pub fn parse(text: &str) -> Result<Version> {
        validate(text)
            .map_err(|reason| Error::InvalidVersion { input: text.to_owned(), reason: reason.to_owned() })?;
        let parsed = text
            .parse::<debversion::Version>()
            .map_err(|e| Error::InvalidVersion { input: text.to_owned(), reason: e.to_string() })?;
        Ok(Version { text: text.to_owned(), parsed })
    }

    /// The version string exactly as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The epoch, if one was written (`0:1.0` has `Some(0)`).
    pub fn epoch(&self) -> Option<u32> {
        self.parsed.epoch
    }

    /// The upstream part (between the epoch and the last hyphen).
    pub fn upstream(&self) -> &str {
        &self.parsed.upstream_version
    }

    /// The Debian revision (after the last hyphen), if any.
    pub fn revision(&self) -> Option<&str> {
        self.parsed.debian_revision.as_deref()
    }

    /// The wrapped [`debversion::Version`].
    pub fn inner(&self) -> &debversion::Version {
        &self.parsed
    }

    /// The lowest version of `release` and everything after it: `release~`.
    ///
    /// Every version of release `R` (pre-releases `R~rc1`, the release `R`
    /// itself, its revisions `R-1`, `R+dfsg-1`, …) is `>= R~`.
    pub fn cutoff(release: &Version) -> Version {
        // `~` is valid in both the upstream part and the revision, so
        // appending it always gives a valid version.
        Version::parse(&format!("{}~", release.text))
            .unwrap_or_else(|_| unreachable!("appending ~ keeps a version valid"))
    }

    /// Whether `self` comes before release `release`, i.e. `self < release~`.
    ///
    /// See the [module documentation](self) for why the tilde.
    pub fn is_before(&self, release: &Version) -> bool {
        *self < Version::cutoff(release)
    }
}

/// Whether `old` comes before release `release` (`old < release~`).
///
/// `is_before(&old, "2017.12")` is the test for "an upgrade from a version
/// before 2017.12". Fails only if `release` is not a valid version.
pub fn is_before(old: &Version, release: &str) -> Result<bool> {
    Ok(old.is_before(&Version::parse(release)?))
}

/// `is_before` for an optional old version: `None` (a fresh install, an
/// empty `configure ""` argument) is never "before" anything.
pub fn upgrade_from_before(old: Option<&Version>, release: &str) -> Result<bool> {
    let release = Version::parse(release)?;
    Ok(old.is_some_and(|old| old.is_before(&release)))
}

/// The checks of dpkg's `parseversion()`, with its warnings (bad first
/// character, invalid characters) treated as errors, as
/// `dpkg --validate-version` does.
fn validate(text: &str) -> std::result::Result<(), &'static str> {
    if text.is_empty() {
        return Err("version string is empty");
    }
    if text.chars().any(char::is_whitespace) {
        return Err("version string contains whitespace");
    }
    let rest = match text.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err("epoch in version is empty");
            }
            if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err("epoch in version is not number");
            }
            // dpkg limits the epoch to INT_MAX.
            match epoch.parse::<u64>() {
                Ok(n) if n <= i32::MAX as u64 => {}
                _ => return Err("epoch in version is too big"),
            }
            if rest.is_empty() {
                return Err("nothing after colon in version number");
            }
            rest
        }
        None => text,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => {
            if revision.is_empty() {
                return Err("revision number is empty");
            }
            (upstream, Some(revision))
        }
        None => (rest, None),
    };
    if upstream.is_empty() {
        return Err("version number is empty");
    }
    if !upstream.as_bytes()[0].is_ascii_digit() {
        return Err("version number does not start with digit");
    }
    if !upstream.bytes().all(|b| b.is_ascii_alphanumeric() || b".-+~:".contains(&b)) {
        return Err("invalid character in version number");
    }
    if let Some(revision) = revision {
        if !revision.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b)) {
            return Err("invalid character in revision number");
        }
    }
    Ok(())
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parsed.cmp(&other.parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parts_and_display() {
        let x = v("1:2.0~rc1-1+deb9u1");
        assert_eq!(x.epoch(), Some(1));
        assert_eq!(x.upstream(), "2.0~rc1");
        assert_eq!(x.revision(), Some("1+deb9u1"));
        assert_eq!(x.to_string(), "1:2.0~rc1-1+deb9u1");
        assert_eq!(x.as_str(), "1:2.0~rc1-1+deb9u1");

        let y = v("1.0-1-2");
        assert_eq!(y.upstream(), "1.0-1");
        assert_eq!(y.revision(), Some("2"));

        let z = v("1:1:1");
        assert_eq!(z.epoch(), Some(1));
        assert_eq!(z.upstream(), "1:1");
        assert_eq!(z.revision(), None);

        assert_eq!(format!("{:?}", v("00:1.0")), r#"Version("00:1.0")"#);
        assert_eq!(v("00:1.0").to_string(), "00:1.0");
    }

    #[test]
    fn dpkg_equality() {
        assert_eq!(v("1.0"), v("1.0-0"));
        assert_eq!(v("1.0"), v("0:1.0"));
        assert_eq!(v("1.0"), v("1.00"));
        assert_ne!(v("1.0"), v("1.0-1"));
        assert_eq!(v("1.0").cmp(&v("1.0-1")), Ordering::Less);
        assert_eq!(v("2017.12~rc1").cmp(&v("2017.12")), Ordering::Less);
        assert_eq!(v("2017.12").cmp(&v("2017.12-1")), Ordering::Less);
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        for bad in [
            "",
            " 1.0",
            "1.0 ",
            "1.0 1",
            "1.0\t1",
            ":1.0",
            "1:",
            "a:1.0",
            "-1:1.0",
            "+1:1.0",
            "99999999999:1",
            "2147483648:1",
            "1.0-",
            "1.0~-",
            "-1",
            "a1",
            "abc",
            "1_0",
            "1.0@",
            "1.0-a_b",
            "1.0-1:2",
            "1.0-1/2",
            "1.0ä",
            "1:-1",
        ] {
            let err = Version::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("invalid Debian version"), "{bad}: {err}");
        }
        // The largest epoch dpkg accepts.
        v("2147483647:1");
    }

    #[test]
    fn accepts_odd_but_valid() {
        for good in [
            "0",
            "1",
            "1:1:1",
            "1.0-1-2",
            "1.0+dfsg",
            "1.0~",
            "1.0-~",
            "1.0A",
            "0:0",
            "1-1",
            "1.0-1.2~bpo1+b1",
            "9:1.0-0ubuntu1",
        ] {
            v(good);
        }
    }

    #[test]
    fn before_2017_12() {
        let before = |s: &str| is_before(&v(s), V1_REMOVAL_RELEASE).unwrap();
        for yes in [
            "2017.10-1",
            "2017.10-1+deb9u1",
            "2017.11-1",
            "2017.11.99",
            "2016.12",
            "2017.12~~",
            "0.1",
            "2017.1",
        ] {
            assert!(before(yes), "{yes} should be before 2017.12");
        }
        for no in [
            "2017.12~",
            "2017.12~rc1",
            "2017.12~rc1-1",
            "2017.12",
            "2017.12-0.1",
            "2017.12-1",
            "2017.12+dfsg-1",
            "2017.12.1-1",
            "2018.01-1",
            "1:2016.1",
        ] {
            assert!(!before(no), "{no} should not be before 2017.12");
        }
        assert!(is_before(&v("1.0"), "not a version").is_err());
    }

    #[test]
    fn upgrade_from_before_optional() {
        assert!(!upgrade_from_before(None, "2017.12").unwrap());
        assert!(upgrade_from_before(Some(&v("2017.10-1")), "2017.12").unwrap());
        assert!(!upgrade_from_before(Some(&v("2017.12-1")), "2017.12").unwrap());
    }

    #[test]
    fn cutoff_of_revisioned_release() {
        let r = v("2017.12-1");
        assert_eq!(Version::cutoff(&r).as_str(), "2017.12-1~");
        assert!(v("2017.12").is_before(&r));
        assert!(v("2017.12-0.1").is_before(&r));
        assert!(!v("2017.12-1~bpo1").is_before(&r));
        assert!(!v("2017.12-1").is_before(&r));
    }
}
