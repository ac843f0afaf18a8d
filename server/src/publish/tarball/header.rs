//! One 512-byte tar header, read strictly: only the fields and encodings on which node-tar, GNU
//! tar and the Rust `tar` crate agree.

use super::TarballError;

pub(super) const BLOCK: usize = 512;

/// What a header introduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Directory,
    /// A PAX extended header (`x`): records for the next entry.
    Pax,
    /// A PAX global header (`g`): records for every later entry.
    GlobalPax,
    /// A GNU long name (`L`): the next entry's path.
    GnuLongName,
}

/// The fields of a header that decide what an entry is and where its data ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub kind: Kind,
    /// The path from the header's own fields (`prefix/name` for POSIX ustar).
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    /// POSIX ustar (`ustar\000`): has a path prefix field.
    Posix,
    /// GNU (`ustar  \0`): no prefix field.
    Gnu,
}

impl Header {
    /// Parses a header block that is not all zeros.
    pub fn parse(block: &[u8; BLOCK]) -> Result<Header, TarballError> {
        let label = label(block);
        let stored = number(&block[148..156]).ok().flatten().ok_or_else(|| {
            TarballError::ambiguous(format!("the header of {label} has an unreadable checksum"))
        })?;
        if stored != checksum(block) {
            return Err(TarballError::ambiguous(format!("the header of {label} has a wrong checksum")));
        }
        let magic = match &block[257..265] {
            b"ustar\x0000" => Magic::Posix,
            b"ustar  \x00" => Magic::Gnu,
            _ => {
                return Err(TarballError::ambiguous(format!(
                    "the header of {label} is neither POSIX ustar nor GNU tar"
                )));
            }
        };
        // Every number node-tar decodes must be plain octal: it skips a header with a malformed
        // base-256 number, where other readers take the entry.
        let mut numbers: Vec<(&str, &[u8])> = vec![
            ("mode", &block[100..108]),
            ("uid", &block[108..116]),
            ("gid", &block[116..124]),
            ("mtime", &block[136..148]),
        ];
        if magic == Magic::Posix {
            numbers.push(("devmajor", &block[329..337]));
            numbers.push(("devminor", &block[337..345]));
            if block[475] == 0 {
                // node-tar reads a 130-byte prefix then atime and ctime here ("star" layout).
                numbers.push(("atime", &block[476..488]));
                numbers.push(("ctime", &block[488..500]));
            }
        }
        for (field, bytes) in numbers {
            number(bytes).map_err(|()| {
                TarballError::ambiguous(format!("the header of {label} has a malformed {field} field"))
            })?;
        }
        let size = number(&block[124..136]).ok().flatten().ok_or_else(|| {
            TarballError::ambiguous(format!("the header of {label} has a malformed size field"))
        })?;
        let kind = match block[156] {
            b'0' | 0 => Kind::File,
            b'5' => Kind::Directory,
            b'x' => Kind::Pax,
            b'g' => Kind::GlobalPax,
            b'L' => Kind::GnuLongName,
            other => return Err(TarballError::ambiguous(unsupported(other, &label))),
        };
        if block[157..257].iter().any(|&b| b != 0) {
            // node-tar skips any non-link entry that names a link target; others unpack it.
            return Err(TarballError::ambiguous(format!("the header of {label} names a link target")));
        }
        let name = text(&block[0..100]).ok_or_else(|| {
            TarballError::ambiguous(format!("the header of {label} has a malformed name field"))
        })?;
        if name.is_empty() {
            return Err(TarballError::ambiguous("an entry in the tarball has an empty name"));
        }
        let prefix = match magic {
            Magic::Gnu => Some(""),
            Magic::Posix if block[475] != 0 => text(&block[345..500]),
            Magic::Posix => text(&block[345..475]),
        }
        .ok_or_else(|| {
            TarballError::ambiguous(format!("the header of {label} has a malformed prefix field"))
        })?;
        let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        Ok(Header { kind, path, size })
    }
}

/// The header's unsigned checksum: every byte, the checksum field counted as spaces.
pub(super) fn checksum(block: &[u8; BLOCK]) -> u64 {
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let field: u64 = block[148..156].iter().map(|&b| u64::from(b)).sum();
    sum - field + 8 * u64::from(b' ')
}

/// A numeric field: `None` when blank (only NULs and spaces), else leading spaces, octal
/// digits, and at least one NUL or space to the end. Anything else (base-256, signs, stray
/// characters, no terminator) is `Err`: readers disagree on such fields.
pub(super) fn number(field: &[u8]) -> Result<Option<u64>, ()> {
    if field.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(None);
    }
    let start = field.iter().take_while(|&&b| b == b' ').count();
    let digits = field[start..].iter().take_while(|b| (b'0'..=b'7').contains(*b)).count();
    let end = start + digits;
    if digits == 0 || end == field.len() || field[end..].iter().any(|&b| b != 0 && b != b' ') {
        return Err(());
    }
    let mut value: u64 = 0;
    for &b in &field[start..end] {
        value = value.checked_mul(8).ok_or(())? + u64::from(b - b'0');
    }
    Ok(Some(value))
}

/// A string field: UTF-8 up to the first NUL, and only NULs after it (node-tar's decoding of
/// bytes after a NUL differs from other readers'). `None` if malformed.
fn text(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    if field[end..].iter().any(|&b| b != 0) {
        return None;
    }
    std::str::from_utf8(&field[..end]).ok()
}

/// How a header is named in messages: its name field, made printable.
fn label(block: &[u8; BLOCK]) -> String {
    let end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name: String = String::from_utf8_lossy(&block[..end])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    if name.is_empty() { "an unnamed entry".into() } else { format!("{name:?}") }
}

fn unsupported(typeflag: u8, label: &str) -> String {
    let what = match typeflag {
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' => "a character device",
        b'4' => "a block device",
        b'6' => "a FIFO",
        b'7' => "a contiguous file (an entry type readers treat differently)",
        b'K' => "a GNU long link name",
        b'S' => "a GNU sparse file",
        _ => "an entry of an unsupported type",
    };
    format!("{label} is {what}; npm packages hold only files and folders")
}
