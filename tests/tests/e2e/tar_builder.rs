//! Tarballs built byte by byte (the `tar` crate will not write most odd archives), and npm's own
//! node-tar to unpack them exactly as pacote does for `npm install`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub const BLOCK: usize = 512;

/// How a header's checksum field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// GNU tar: six digits, NUL, space.
    Gnu,
    /// node-tar: six digits, space, NUL.
    Node,
    /// The `tar` crate: seven digits, NUL.
    Seven,
    /// Eight digits and no terminator.
    Unterminated,
    /// Off by this much.
    Wrong(i64),
}

/// One header block under construction.
#[derive(Debug, Clone)]
pub struct Header {
    pub block: [u8; BLOCK],
    pub checksum: Checksum,
}

impl Header {
    /// A POSIX ustar header (`ustar\000`), as npm pack writes it.
    pub fn posix(name: &str, typeflag: u8, size: u64) -> Header {
        let mut h = Header { block: [0; BLOCK], checksum: Checksum::Node };
        h.field(0, 100, name.as_bytes()).octal(100, 8, 0o644).octal(124, 12, size).octal(136, 12, 499162500);
        h.block[156] = typeflag;
        h.put(257, b"ustar\x0000");
        h
    }

    /// A GNU header (`ustar  \0`), as the `tar` crate writes it.
    pub fn gnu(name: &str, typeflag: u8, size: u64) -> Header {
        let mut h = Header::posix(name, typeflag, size);
        h.put(257, b"ustar  \0");
        h.checksum = Checksum::Seven;
        h
    }

    pub fn put(&mut self, offset: usize, bytes: &[u8]) -> &mut Self {
        let end = (offset + bytes.len()).min(BLOCK);
        self.block[offset..end].copy_from_slice(&bytes[..end - offset]);
        self
    }

    /// Clears a field, then writes `bytes` into it.
    pub fn field(&mut self, offset: usize, width: usize, bytes: &[u8]) -> &mut Self {
        self.block[offset..offset + width].fill(0);
        let n = bytes.len().min(width);
        self.put(offset, &bytes[..n])
    }

    pub fn octal(&mut self, offset: usize, width: usize, value: u64) -> &mut Self {
        self.field(offset, width, format!("{value:0w$o}\0", w = width - 1).as_bytes())
    }

    pub fn bytes(&self) -> [u8; BLOCK] {
        let mut block = self.block;
        block[148..156].fill(b' ');
        let sum: i64 = block.iter().map(|&b| i64::from(b)).sum();
        let field = match self.checksum {
            Checksum::Gnu => format!("{sum:06o}\0 "),
            Checksum::Node => format!("{sum:06o} \0"),
            Checksum::Seven => format!("{sum:07o}\0"),
            Checksum::Unterminated => format!("{sum:08o}"),
            Checksum::Wrong(by) => format!("{:06o}\0 ", sum + by),
        };
        block[148..156].copy_from_slice(&field.as_bytes()[..8]);
        block
    }
}

/// A header, its data, and padding to a whole block.
pub fn entry(header: &Header, data: &[u8]) -> Vec<u8> {
    let mut out = header.bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

pub fn file(path: &str, data: &[u8]) -> Vec<u8> {
    entry(&Header::posix(path, b'0', data.len() as u64), data)
}

/// One PAX record, its length counting itself.
pub fn record(key: &str, value: &str) -> String {
    let content = format!(" {key}={value}\n");
    let mut len = content.len() + 1;
    while len.to_string().len() + content.len() != len {
        len += 1;
    }
    format!("{len}{content}")
}

/// An extended header (`x`, `g` or `L`) with its body.
pub fn extended(typeflag: u8, body: &[u8]) -> Vec<u8> {
    entry(&Header::posix("PaxHeader/entry", typeflag, body.len() as u64), body)
}

pub fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(tar).unwrap();
    gz.finish().unwrap()
}

/// What node-tar unpacked from one tarball.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The bytes of `package.json` in the unpacked folder, if there is one.
    pub package_json: Option<Vec<u8>>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// npm's bundled node-tar (the copy `npm install` runs).
pub fn node_tar() -> String {
    let out = Command::new("npm").args(["root", "-g"]).output().expect("npm root -g");
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let tar = Path::new(&root).join("npm/node_modules/tar");
    assert!(tar.join("package.json").exists(), "npm's node-tar is not at {}", tar.display());
    tar.display().to_string()
}

/// Unpacks each tarball with node-tar, with the options pacote uses for `npm install`
/// (`strip: 1`, links filtered out), in one `node` process.
pub fn unpack_with_node_tar(dir: &Path, tarballs: &[Vec<u8>]) -> Vec<Unpacked> {
    let files: Vec<String> = tarballs
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.join(format!("case-{i}.tgz"));
            std::fs::write(&path, bytes).unwrap();
            path.display().to_string()
        })
        .collect();
    let list = dir.join("cases.json");
    std::fs::write(&list, serde_json::to_vec(&files).unwrap()).unwrap();
    let script = dir.join("unpack.js");
    std::fs::write(&script, UNPACK_JS).unwrap();
    let out = Command::new("node").arg(&script).arg(node_tar()).arg(&list).output().expect("run node");
    assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("node's JSON");
    assert_eq!(results.len(), tarballs.len());
    results
        .into_iter()
        .map(|r| Unpacked {
            package_json: r["pkg"].as_str().map(|b| STANDARD.decode(b).unwrap()),
            error: r["error"].as_str().map(str::to_string),
            warnings: r["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// pacote's `#tarxOptions` (npm 11), minus the mode and .gitignore handling.
const UNPACK_JS: &str = r#"
const tar = require(process.argv[2]);
const fs = require('fs');
const path = require('path');
const files = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const unpack = (file, dest, warnings) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('timed out')), 20000);
  const x = tar.x({
    cwd: dest, strip: 1, noChmod: true, noMtime: true, preserveOwner: false,
    filter: (name, entry) => {
      if (/Link$/.test(entry.type)) return false;
      if (/File$/.test(entry.type)) return true;
    },
    onwarn: (code, msg) => warnings.push(code + ': ' + ((msg && msg.message) || msg)),
  });
  x.on('end', () => { clearTimeout(timer); resolve(); });
  x.on('error', (e) => { clearTimeout(timer); reject(e); });
  const input = fs.createReadStream(file);
  input.on('error', reject);
  input.pipe(x);
});
(async () => {
  const out = [];
  for (const file of files) {
    const dest = file + '.d';
    fs.mkdirSync(dest, { recursive: true });
    const warnings = [];
    let error = null;
    try { await unpack(file, dest, warnings); } catch (e) { error = String((e && e.message) || e); }
    let pkg = null;
    try { pkg = fs.readFileSync(path.join(dest, 'package.json')).toString('base64'); } catch (e) {}
    out.push({ pkg, error, warnings });
  }
  process.stdout.write(JSON.stringify(out));
})();
"#;
