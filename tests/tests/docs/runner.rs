//! Runs the shell examples of a Markdown document and compares their
//! output with the document.
//!
//! The examples are the fenced blocks marked `console`: each `$ ` line is a
//! command (a line ending in `\` continues on the next), and the lines
//! after it, up to the next command, are what it prints on standard output
//! and standard error. In the expected text, `[..]` stands for any text
//! within a line and a line `...` for any number of lines (as in
//! `trycmd`); a last line `? N` expects exit status N (otherwise 0).
//!
//! All commands of a document run in one `bash`, in order, in a fresh
//! directory (so `portcullis.db` is new), with `portcullis` on the `PATH`
//! (the binary under test). A command ending in `&` runs in the background
//! with its output kept aside. Addresses `127.0.0.1:80NN` in the document
//! are mapped to free loopback ports, and the first one is the `listen`
//! default, so a document can say `127.0.0.1:8080` while tests run side by
//! side.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// One command of a document and what it should print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The document's line of the command.
    pub(crate) line: usize,
    /// The command, continuation lines included.
    pub(crate) command: String,
    /// The expected output lines.
    pub(crate) expected: Vec<String>,
    /// The expected exit status.
    pub(crate) status: i32,
}

/// The commands of the `console` blocks of `markdown`.
pub(crate) fn parse(markdown: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut continuing = false;
    let mut writing: Option<String> = None;
    let mut file = String::new();
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            if let Some(name) = writing.take() {
                steps.push(Step {
                    line: i + 1,
                    command: format!("cat > {name} <<'END_OF_DOCUMENT_FILE'\n{file}END_OF_DOCUMENT_FILE"),
                    expected: Vec::new(),
                    status: 0,
                });
                file.clear();
                continue;
            }
            writing = info
                .split_whitespace()
                .find_map(|w| w.strip_prefix("file="))
                .map(str::to_owned);
            in_block = !in_block && writing.is_none() && info.trim() == "console";
            continuing = false;
            continue;
        }
        if writing.is_some() {
            file.push_str(line);
            file.push('\n');
            continue;
        }
        if !in_block {
            continue;
        }
        if continuing {
            let step = steps.last_mut().expect("a command continues");
            step.command.push('\n');
            step.command.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: i + 1,
                command: command.to_owned(),
                expected: Vec::new(),
                status: 0,
            });
            continuing = command.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            match line.strip_prefix("? ").map(str::parse::<i32>) {
                Some(Ok(status)) => step.status = status,
                _ => step.expected.push(line.to_owned()),
            }
        }
    }
    steps
}

/// Whether `actual` matches the pattern `expected` (see the module).
pub(crate) fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && matches(rest, more)),
    }
}

/// One line against a pattern with `[..]` wildcards.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// A `bash` running a document's commands in a directory of its own.
pub(crate) struct Shell {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    dir: tempfile::TempDir,
    ports: BTreeMap<String, String>,
}

/// Ends a command's output: ASCII record separators around its status.
const MARK: u8 = 0x1e;

impl Shell {
    /// A shell in a fresh directory, `portcullis` being `bin`, the
    /// addresses `127.0.0.1:80NN` of `markdown` mapped to free ports; with
    /// `listen`, `PORTCULLIS_LISTEN` makes the first the default address.
    pub(crate) fn new(bin: &str, markdown: &str, listen: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let bin_dir = dir.path().join(".bin");
        std::fs::create_dir(&bin_dir).expect("bin directory");
        std::os::unix::fs::symlink(bin, bin_dir.join("portcullis")).expect("symlink the binary");
        let mut ports = BTreeMap::new();
        for (at, _) in markdown.match_indices("127.0.0.1:80") {
            let address = &markdown[at..at + "127.0.0.1:8080".len()];
            if address[10..].bytes().all(|b| b.is_ascii_digit()) && !ports.contains_key(address) {
                let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                let port = free.local_addr().expect("address").port();
                ports.insert(address.to_owned(), format!("127.0.0.1:{port}"));
            }
        }
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut bash = Command::new("bash");
        bash.args(["--noprofile", "--norc"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir.path())
            .env("LANG", "C.UTF-8");
        if let Some(address) = ports.get("127.0.0.1:8080").filter(|_| listen) {
            bash.env("PORTCULLIS_LISTEN", address);
        }
        let mut child = bash
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            output,
            pending: Vec::new(),
            dir,
            ports,
        }
    }

    /// `text` with the document's addresses mapped to this run's.
    pub(crate) fn localize(&self, text: &str) -> String {
        self.ports
            .iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    }

    /// Runs one command; returns its output (standard output and error)
    /// and exit status. A command ending in `&` runs in the background,
    /// its output appended to `background.log`.
    pub(crate) fn run(&mut self, command: &str, timeout: Duration) -> (String, i32) {
        let command = self.localize(command);
        let script = match command.trim_end().strip_suffix('&') {
            Some(background) => {
                format!("{{ {background}\n}} >>background.log 2>&1 </dev/null &\nprintf '\\n\\036%d\\036\\n' 0\n")
            }
            None => format!("{{ {command}\n}} 2>&1 </dev/null\nprintf '\\n\\036%d\\036\\n' \"$?\"\n"),
        };
        self.stdin.write_all(script.as_bytes()).expect("write to bash");
        self.stdin.flush().expect("flush");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(start) = self.pending.iter().position(|&b| b == MARK) {
                if let Some(len) = self.pending[start + 1..].iter().position(|&b| b == MARK) {
                    let status: i32 = String::from_utf8_lossy(&self.pending[start + 1..start + 1 + len])
                        .parse()
                        .expect("a status");
                    let out = String::from_utf8_lossy(&self.pending[..start]).into_owned();
                    // The mark's own line end.
                    let end = (start + len + 3).min(self.pending.len());
                    self.pending.drain(..end);
                    return (out, status);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "`{command}` did not finish within {timeout:?}");
            if let Ok(chunk) = self.output.recv_timeout(left.min(Duration::from_millis(200))) {
                self.pending.extend(chunk);
            }
        }
    }

    /// What the background commands printed so far.
    pub(crate) fn background_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("background.log")).unwrap_or_default()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The shell and whatever it left running in the background.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Runs every example of the document at `path` (relative to the
/// workspace) and fails, naming the line, on the first difference. With
/// `listen`, `127.0.0.1:8080` is the default listen address (see
/// [`Shell::new`]).
pub(crate) fn check_document(bin: &str, path: &str, listen: bool) {
    let file = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    let markdown = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let steps = parse(&markdown);
    assert!(!steps.is_empty(), "{path} has no `console` examples");
    let mut shell = Shell::new(bin, &markdown, listen);
    for step in &steps {
        let (out, status) = shell.run(&step.command, Duration::from_secs(60));
        let expected: Vec<String> = step.expected.iter().map(|l| shell.localize(l)).collect();
        let actual: Vec<&str> = out.trim_end().lines().map(str::trim_end).collect();
        let actual: Vec<&str> = if actual == [""] { Vec::new() } else { actual };
        let expected_text = expected.join("\n");
        let expected: Vec<String> = expected_text
            .trim_end()
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert!(
            status == step.status && matches(&expected, &actual),
            "{path}:{}: `{}`\n--- expected (exit {}):\n{}\n--- got (exit {status}):\n{}\n--- background output:\n{}",
            step.line,
            step.command,
            step.status,
            expected.join("\n"),
            actual.join("\n"),
            shell.background_log(),
        );
    }
}
