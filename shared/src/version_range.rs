//! npm-style version ranges, as a CI credential's scope names them: the versions its deploy keys
//! may publish. Both the registry (when it issues a deploy key) and `tapgate verify` (offline,
//! when it checks the chain) decide membership with this one matcher.
//!
//! Supported, as npm reads them: exact versions (`1.2.3`, `=1.2.3`), comparators (`>=1.2.0`,
//! `<2.0.0`, `>`, `<=`), carets (`^1.2.3`, `^0.2`), tildes (`~1.2.3`), partial and wildcard
//! versions (`1.x`, `1.2`, `*`, `x`), several comparators in one set (`>=1.2.0 <1.5.0`), and sets
//! joined by `||`. A prerelease (`2.0.0-rc.1`) is in a range only when a comparator of the same
//! set names a prerelease of the same `major.minor.patch`, as in npm. Hyphen ranges
//! (`1.0.0 - 2.0.0`) and build metadata are refused rather than guessed at.

use std::cmp::Ordering;

/// The longest range accepted, in bytes.
pub const MAX_RANGE_LEN: usize = 256;
/// The most comparators a range may hold.
const MAX_COMPARATORS: usize = 32;

/// A full version: `major.minor.patch[-prerelease]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub core: [u64; 3],
    pub pre: Vec<String>,
}

impl Version {
    /// Reads a semantic version (no build metadata).
    pub fn parse(text: &str) -> Option<Version> {
        let (core, pre) = match text.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (text, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [a, b, c] = parts[..] else { return None };
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let ids: Vec<String> = p.split('.').map(str::to_string).collect();
                if ids
                    .iter()
                    .any(|i| i.is_empty() || !i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                {
                    return None;
                }
                ids
            }
        };
        Some(Version { core: [number(a)?, number(b)?, number(c)?], pre })
    }

    fn compare(&self, other: &Version) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (x, y) in self.pre.iter().zip(&other.pre) {
                    let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                        (Ok(m), Ok(n)) => m.cmp(&n),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => x.cmp(y),
                    };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                self.pre.len().cmp(&other.pre.len())
            }
        })
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
}

impl Comparator {
    fn matches(&self, v: &Version) -> bool {
        let ord = v.compare(&self.version);
        match self.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
        }
    }
}

/// A parsed range: any of its sets, each all of its comparators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    sets: Vec<Vec<Comparator>>,
}

/// A partial version: `1`, `1.2`, `1.2.3-pre`, with `x`, `X` or `*` for missing parts.
struct Partial {
    parts: Vec<u64>,
    pre: Vec<String>,
}

fn partial(text: &str) -> Result<Partial, String> {
    let bad = || format!("{text:?} is not a version or partial version (like 1.2.3, 1.2, 1.x or *)");
    if text.contains('+') {
        return Err(format!("{text:?}: build metadata (+…) has no place in a range"));
    }
    let (core, pre) = match text.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (text, None),
    };
    let mut parts = Vec::new();
    let mut wild = false;
    for (i, piece) in core.split('.').enumerate() {
        if i > 2 {
            return Err(bad());
        }
        if matches!(piece, "x" | "X" | "*") {
            wild = true;
        } else if wild {
            return Err(bad());
        } else {
            parts.push(number(piece).ok_or_else(bad)?);
        }
    }
    let pre = match pre {
        None => Vec::new(),
        Some(_) if parts.len() < 3 => return Err(bad()),
        Some(_) => Version::parse(text).ok_or_else(bad)?.pre,
    };
    Ok(Partial { parts, pre })
}

fn version(core: [u64; 3], pre: Vec<String>) -> Version {
    Version { core, pre }
}

/// The lowest version above every release `< core` (npm writes it `core-0`).
fn floor(core: [u64; 3]) -> Version {
    version(core, vec!["0".into()])
}

fn cmp(op: Op, version: Version) -> Comparator {
    Comparator { op, version }
}

/// The comparators one written comparator stands for.
fn desugar(text: &str) -> Result<Vec<Comparator>, String> {
    let (op, rest) = ["^", "~>", "~", ">=", "<=", ">", "<", "="]
        .iter()
        .find_map(|op| text.strip_prefix(op).map(|rest| (*op, rest.trim_start())))
        .unwrap_or(("", text));
    let p = partial(rest)?;
    let n = p.parts.len();
    let get = |i: usize| p.parts.get(i).copied().unwrap_or(0);
    let (ma, mi, pa) = (get(0), get(1), get(2));
    let full = || version([ma, mi, pa], p.pre.clone());
    let next_major = || ma.checked_add(1).map(|m| floor([m, 0, 0])).ok_or("version number too large");
    let next_minor = || mi.checked_add(1).map(|m| floor([ma, m, 0])).ok_or("version number too large");
    let next_patch = || pa.checked_add(1).map(|m| floor([ma, mi, m])).ok_or("version number too large");
    let upper = |n: usize| match n {
        0 => Ok(None),
        1 => next_major().map(Some),
        2 => next_minor().map(Some),
        _ => Ok(None),
    };
    let between = |low: Version, high: Option<Version>| {
        let mut out = vec![cmp(Op::Ge, low)];
        out.extend(high.map(|h| cmp(Op::Lt, h)));
        Ok(out)
    };
    match op {
        "" | "=" if n == 3 => Ok(vec![cmp(Op::Eq, full())]),
        "" | "=" => between(full(), upper(n)?),
        "^" => {
            let high = match n {
                0 => None,
                1 => Some(next_major()?),
                2 if ma == 0 => Some(next_minor()?),
                2 => Some(next_major()?),
                _ if ma > 0 => Some(next_major()?),
                _ if mi > 0 => Some(next_minor()?),
                _ => Some(next_patch()?),
            };
            between(full(), high)
        }
        "~" | "~>" => {
            let high = match n {
                0 => None,
                1 => Some(next_major()?),
                _ => Some(next_minor()?),
            };
            between(full(), high)
        }
        ">=" => Ok(vec![cmp(Op::Ge, full())]),
        "<" => Ok(vec![cmp(Op::Lt, if n == 3 { full() } else { floor([ma, mi, pa]) })]),
        ">" if n == 3 => Ok(vec![cmp(Op::Gt, full())]),
        ">" if n == 0 => Ok(vec![cmp(Op::Lt, floor([0, 0, 0]))]),
        ">" => Ok(vec![cmp(Op::Ge, upper(n)?.unwrap_or_else(|| floor([0, 0, 0])))]),
        "<=" if n == 3 => Ok(vec![cmp(Op::Le, full())]),
        "<=" if n == 0 => Ok(vec![cmp(Op::Ge, floor([0, 0, 0]))]),
        "<=" => Ok(vec![cmp(Op::Lt, upper(n)?.unwrap_or_else(|| floor([0, 0, 0])))]),
        _ => Err(format!("{text:?} is not a comparator")),
    }
}

impl Range {
    /// Reads a range; the error says what is wrong, in a sentence.
    pub fn parse(text: &str) -> Result<Range, String> {
        if text.len() > MAX_RANGE_LEN {
            return Err(format!("a version range is at most {MAX_RANGE_LEN} characters"));
        }
        if text.chars().any(char::is_control) {
            return Err("a version range is one line".into());
        }
        let mut sets = Vec::new();
        let mut count = 0;
        for set in text.split("||") {
            let words: Vec<&str> = set.split_whitespace().collect();
            if words.contains(&"-") {
                return Err("hyphen ranges (1.0.0 - 2.0.0) are not supported: write >=1.0.0 <=2.0.0".into());
            }
            // `>= 1.2.3` with a space: join an operator with the version after it.
            let mut joined: Vec<String> = Vec::new();
            let mut pending: Option<&str> = None;
            for w in words {
                if let Some(op) = pending.take() {
                    joined.push(format!("{op}{w}"));
                } else if matches!(w, "^" | "~" | "~>" | ">=" | "<=" | ">" | "<" | "=") {
                    pending = Some(w);
                } else {
                    joined.push(w.to_string());
                }
            }
            if let Some(op) = pending {
                return Err(format!("{op:?} needs a version after it"));
            }
            let mut comparators = Vec::new();
            for word in &joined {
                comparators.extend(desugar(word)?);
            }
            count += comparators.len();
            if count > MAX_COMPARATORS {
                return Err(format!("a version range holds at most {MAX_COMPARATORS} comparators"));
            }
            if joined.is_empty() && text.contains("||") {
                return Err("an empty alternative in a `||` range".into());
            }
            sets.push(comparators);
        }
        Ok(Range { sets })
    }

    /// Whether `version` (a full semantic version) is in the range.
    pub fn contains(&self, version: &str) -> bool {
        let Some(v) = Version::parse(version) else { return false };
        self.sets.iter().any(|set| {
            set.iter().all(|c| c.matches(&v))
                && (v.pre.is_empty()
                    || set.iter().any(|c| {
                        !c.version.pre.is_empty() && c.version.core == v.core && c.version.pre != ["0"]
                    }))
        })
    }
}

/// Whether `version` is in the range written `range` (false when the range does not parse).
pub fn satisfies(version: &str, range: &str) -> bool {
    Range::parse(range).is_ok_and(|r| r.contains(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(range: &str, versions: &[&str]) {
        for v in versions {
            assert!(satisfies(v, range), "{v} should satisfy {range}");
        }
    }

    fn no(range: &str, versions: &[&str]) {
        assert!(Range::parse(range).is_ok(), "{range} parses");
        for v in versions {
            assert!(!satisfies(v, range), "{v} should not satisfy {range}");
        }
    }

    #[test]
    fn carets() {
        yes("^1.2.3", &["1.2.3", "1.2.4", "1.9.0"]);
        no("^1.2.3", &["1.2.2", "2.0.0", "2.0.0-rc.1", "1.3.0-beta", "0.9.0"]);
        yes("^0.2.3", &["0.2.3", "0.2.9"]);
        no("^0.2.3", &["0.3.0", "0.2.2"]);
        yes("^0.0.3", &["0.0.3"]);
        no("^0.0.3", &["0.0.4"]);
        yes("^1.2", &["1.2.0", "1.99.0"]);
        no("^0.2", &["0.3.0"]);
        yes("^1.2.3-beta.2", &["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3", "1.5.0"]);
        no("^1.2.3-beta.2", &["1.2.3-beta.1", "1.2.4-beta.1"]);
    }

    #[test]
    fn tildes_partials_and_wildcards() {
        yes("~1.2.3", &["1.2.3", "1.2.9"]);
        no("~1.2.3", &["1.3.0", "1.2.2"]);
        yes("~1", &["1.0.0", "1.9.9"]);
        yes("1.x", &["1.0.0", "1.5.1"]);
        no("1.x", &["2.0.0", "0.9.0", "1.5.0-rc.1"]);
        yes("1.2", &["1.2.0", "1.2.7"]);
        no("1.2", &["1.3.0"]);
        yes("*", &["0.0.1", "9.9.9"]);
        yes("x", &["1.0.0"]);
        yes("", &["1.0.0"]);
        no("*", &["1.0.0-alpha"]);
    }

    #[test]
    fn comparators_exact_and_alternatives() {
        yes("1.2.3", &["1.2.3"]);
        no("1.2.3", &["1.2.4", "1.2.3-rc.1"]);
        yes("=1.2.3", &["1.2.3"]);
        yes(">=1.2.0 <1.5.0", &["1.2.0", "1.4.99"]);
        no(">=1.2.0 <1.5.0", &["1.5.0", "1.1.9"]);
        yes(">= 2.0.0", &["2.0.0", "3.0.0"]);
        yes("<2", &["1.9.9"]);
        no("<2", &["2.0.0"]);
        yes("<=1.2", &["1.2.9"]);
        no("<=1.2", &["1.3.0"]);
        yes(">1.2", &["1.3.0"]);
        no(">1.2", &["1.2.9"]);
        yes("^1.0.0 || ^3.0.0", &["1.4.0", "3.1.0"]);
        no("^1.0.0 || ^3.0.0", &["2.0.0"]);
        yes(">=2.0.0-rc.1 <2.0.0", &["2.0.0-rc.2"]);
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for bad in ["1.0.0 - 2.0.0", "v1", ">=", "1.2.3.4", "^01.0.0", "1.x.3", "abc", "1.0.0+build", "1 ||"]
        {
            assert!(Range::parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(Range::parse(&"1".repeat(300)).is_err());
        assert!(!satisfies("not-a-version", "*"));
    }
}
