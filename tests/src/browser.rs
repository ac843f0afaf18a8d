//! Chromium with a WebAuthn virtual authenticator, through `tests/browser/driver.mjs`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    pub fn start(driver_dir: &Path) -> Browser {
        let mut child = Command::new("node")
            .arg(driver_dir.join("driver.mjs"))
            .current_dir(driver_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the browser driver");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Browser { child, stdin, stdout }
    }

    /// Sends one command; returns its value, or the driver's error.
    pub fn try_cmd(&mut self, cmd: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("driver said {line:?}: {e}"))?;
        if answer["ok"] == true { Ok(answer["value"].clone()) } else { Err(answer["error"].to_string()) }
    }

    /// Sends one command; panics with the page's console on failure.
    pub fn cmd(&mut self, cmd: Value) -> Value {
        match self.try_cmd(cmd.clone()) {
            Ok(v) => v,
            Err(e) => {
                let console = self.try_cmd(json!({"console": true})).unwrap_or_default();
                let status = self.try_cmd(json!({"text": "#status"})).unwrap_or_default();
                panic!("browser command {cmd} failed: {e}\n#status: {status}\nconsole: {console}");
            }
        }
    }

    pub fn goto(&mut self, url: &str) {
        self.cmd(json!({ "goto": url }));
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.cmd(json!({ "fill": selector, "value": value }));
    }

    pub fn click(&mut self, selector: &str) {
        self.cmd(json!({ "click": selector }));
    }

    pub fn wait_for(&mut self, selector: &str) {
        self.cmd(json!({ "waitFor": selector, "timeoutMs": 20000 }));
    }

    /// Resizes the page's viewport (CSS pixels), e.g. 390×844 for a phone.
    pub fn viewport(&mut self, width: u32, height: u32) {
        self.cmd(json!({ "viewport": { "width": width, "height": height } }));
    }

    pub fn text(&mut self, selector: &str) -> String {
        self.cmd(json!({ "text": selector })).as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"quit": true}));
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
