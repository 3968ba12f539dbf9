//! The prompt as the person sees it, and the keys that answer it.
//!
//! Everything the sandboxed program chose (its executable's path, the path
//! it asks for) is shown through [`shown`]: non-UTF-8 bytes as `\xNN`, and
//! control characters, escape sequences and bidirectional overrides written
//! out instead of acting on the terminal. The output is for a terminal in
//! raw mode: lines end in `\r\n`.

use std::path::{Path, PathBuf};

use crate::audit::escape;

/// The person's answer to one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    AllowOnce,
    /// This path, for the rest of the session.
    AllowSession,
    /// Everything beneath the directory, for the rest of the session.
    AllowDirectory,
    /// This path, now and in later sessions (the overlay file).
    AllowAlways,
    DenyOnce,
    /// This path, now and in later sessions (the overlay file).
    DenyAlways,
    /// Nobody answered in time.
    Timeout,
}

impl Choice {
    /// The key pressed. Anything that is not a choice (Enter included)
    /// denies once: the default is deny.
    pub fn from_key(key: u8, can_remember: bool) -> Choice {
        match key {
            b'y' | b'Y' => Choice::AllowOnce,
            b's' => Choice::AllowSession,
            b'd' => Choice::AllowDirectory,
            b'a' if can_remember => Choice::AllowAlways,
            b'v' if can_remember => Choice::DenyAlways,
            _ => Choice::DenyOnce,
        }
    }

    pub fn allows(self) -> bool {
        matches!(
            self,
            Choice::AllowOnce | Choice::AllowSession | Choice::AllowDirectory | Choice::AllowAlways
        )
    }

    pub fn describe(self) -> &'static str {
        match self {
            Choice::AllowOnce => "allowed once",
            Choice::AllowSession => "allowed for this session",
            Choice::AllowDirectory => "allowed, with its directory, for this session",
            Choice::AllowAlways => "allowed always",
            Choice::DenyOnce => "denied",
            Choice::DenyAlways => "denied always",
            Choice::Timeout => "denied: no answer in time",
        }
    }
}

/// What a prompt shows.
#[derive(Debug, Clone)]
pub struct View {
    pub id: u64,
    pub pid: libc::pid_t,
    pub exe: Option<PathBuf>,
    pub path: PathBuf,
    pub write: bool,
    pub rule: Option<String>,
    /// The directory "allow this directory" would allow.
    pub directory: PathBuf,
    /// A connection's `host:port` (the hosts mode's proxy asks); then
    /// `path`, `write` and `directory` mean nothing.
    pub host: Option<String>,
    /// Whether "always" can be written down (the path is UTF-8 text).
    pub can_remember: bool,
    /// Requests waiting for this answer (identical ones joined).
    pub waiting: usize,
    /// Other questions queued behind this one.
    pub behind: usize,
    pub timeout_secs: u64,
}

impl View {
    /// The choice a key makes for this question: a host has no directory.
    pub fn choice(&self, key: u8) -> Choice {
        match Choice::from_key(key, self.can_remember) {
            Choice::AllowDirectory if self.host.is_some() => Choice::DenyOnce,
            choice => choice,
        }
    }

    /// What is asked for, for the terminal.
    fn subject(&self) -> String {
        match &self.host {
            Some(host) => escape::for_terminal(host).into_owned(),
            None => shown(&self.path),
        }
    }
}

/// Text a program chose, made harmless for the terminal.
pub fn shown(path: &Path) -> String {
    escape::path_for_terminal(path)
}

/// The prompt, from a fresh line, up to its status line ([`status`]),
/// which is drawn once keys can answer it.
pub fn prompt(v: &View) -> Vec<u8> {
    let exe = v
        .exe
        .as_deref()
        .map_or_else(|| "(unknown)".to_owned(), shown);
    let rule = v
        .rule
        .as_deref()
        .map_or_else(|| "-".to_owned(), |r| escape::for_terminal(r).into_owned());
    if let Some(host) = &v.host {
        return host_prompt(v, host, &rule);
    }
    let access = if v.write { "read and write" } else { "read" };
    let mut text = String::new();
    text += "\x1b[1msluice: the sandboxed program asks for a file\x1b[0m\r\n";
    text += &format!("  program  pid {} {exe}\r\n", v.pid);
    text += &format!("  path     {}\r\n", shown(&v.path));
    text += &format!("  access   {access}\r\n");
    text += &format!("  rule     {rule}\r\n");
    text += "  [y] allow once   [s] allow this file for the session\r\n";
    text += &format!(
        "  [d] allow everything in {} for the session\r\n",
        shown(&v.directory)
    );
    if v.can_remember {
        text += "  [a] allow always   [n] deny once   [v] deny always   [Enter] deny\r\n";
    } else {
        text += "  [n] deny once   [Enter] deny   (this path cannot be remembered: not UTF-8)\r\n";
    }
    text.into_bytes()
}

/// The prompt for a connection through the proxy (no pid: the connection
/// comes from the program's network namespace, not from a process the
/// proxy can name).
fn host_prompt(v: &View, host: &str, rule: &str) -> Vec<u8> {
    let mut text = String::new();
    text += "\x1b[1msluice: the sandboxed program asks to connect to a host\x1b[0m\r\n";
    text += &format!("  host     {}\r\n", escape::for_terminal(host));
    text += &format!("  rule     {rule}\r\n");
    text += "  [y] allow once   [s] allow this host and port for the session\r\n";
    if v.can_remember {
        text += "  [a] allow always   [n] deny once   [v] deny always   [Enter] deny\r\n";
    } else {
        text += "  [n] deny once   [Enter] deny\r\n";
    }
    text.into_bytes()
}

/// The prompt's last line, redrawn in place as requests join or queue.
pub fn status(v: &View) -> String {
    let requests = if v.waiting == 1 {
        "1 request".to_owned()
    } else {
        format!("{} requests", v.waiting)
    };
    let what = if v.host.is_some() { "host" } else { "file" };
    format!(
        "\r\x1b[K  ({requests} for this {what}, {} other question(s) queued; denied in {} s without an answer) ? ",
        v.behind, v.timeout_secs
    )
}

/// The line above the status line when input that came before the
/// question could answer it was thrown away (`bytes` of it).
pub fn discarded(bytes: usize) -> String {
    format!("\r\x1b[K  {}\r\n", discarded_note(bytes))
}

/// Says that input pending when a question opened was thrown away.
pub fn discarded_note(bytes: usize) -> String {
    format!(
        "{bytes} byte(s) of input that came before this question were discarded \
         (typed ahead, or the terminal's replies to the program): only a key pressed now answers"
    )
}

/// The line that replaces the status line once answered.
pub fn answered(v: &View, choice: Choice, note: Option<&str>) -> Vec<u8> {
    let mut text = format!(
        "\r\x1b[K\x1b[1msluice:\x1b[0m {}: {}",
        choice.describe(),
        v.subject()
    );
    if let Some(note) = note {
        text += &format!(" ({})", escape::for_terminal(note));
    }
    text += "\r\n";
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn view(path: &[u8]) -> View {
        View {
            id: 1,
            pid: 42,
            exe: Some(PathBuf::from("/ws/bin/\x1b]0;evil\x07tool")),
            path: PathBuf::from(OsStr::from_bytes(path)),
            write: false,
            rule: Some("ask \"/\" (default:57)".into()),
            directory: PathBuf::from("/h"),
            host: None,
            can_remember: true,
            waiting: 2,
            behind: 1,
            timeout_secs: 60,
        }
    }

    #[test]
    fn nothing_the_program_chose_reaches_the_terminal_raw() {
        let v = view(b"/h/\x1b[2J\x1b[1;1H\r\n  [y] allow? \xff\xe2\x80\xae");
        let mut text = prompt(&v);
        text.extend_from_slice(status(&v).as_bytes());
        // The only escape sequences are the prompt's own: bold on and off,
        // and erasing the status line.
        let esc = text.iter().filter(|b| **b == 0x1b).count();
        assert_eq!(esc, 3, "{}", String::from_utf8_lossy(&text));
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("/h/\\x1b[2J\\x1b[1;1H\\x0d\\x0a  [y] allow? \\xff\\u{202e}"));
        assert!(text.contains("\\x1b]0;evil\\x07tool"));
        assert!(text.contains("2 requests for this file, 1 other question(s) queued"));
    }

    #[test]
    fn keys_choose_and_anything_else_denies() {
        assert_eq!(Choice::from_key(b'y', true), Choice::AllowOnce);
        assert_eq!(Choice::from_key(b's', true), Choice::AllowSession);
        assert_eq!(Choice::from_key(b'd', true), Choice::AllowDirectory);
        assert_eq!(Choice::from_key(b'a', true), Choice::AllowAlways);
        assert_eq!(Choice::from_key(b'v', true), Choice::DenyAlways);
        for key in [b'\r', b'\n', b'n', b'x', 0x1b, 0x03, b' '] {
            assert_eq!(Choice::from_key(key, true), Choice::DenyOnce, "{key}");
        }
        // "always" cannot be chosen for a path that cannot be written down.
        assert_eq!(Choice::from_key(b'a', false), Choice::DenyOnce);
        // A host has no directory.
        let mut host = view(b"");
        host.host = Some("example.com:443".into());
        assert_eq!(host.choice(b'd'), Choice::DenyOnce);
        assert_eq!(host.choice(b's'), Choice::AllowSession);
        assert_eq!(host.choice(b'a'), Choice::AllowAlways);
        let text = String::from_utf8(prompt(&host)).unwrap();
        assert!(text.contains("asks to connect to a host"), "{text}");
        assert!(text.contains("  host     example.com:443\r\n"), "{text}");
        assert!(!text.contains("[d]"), "{text}");
        let done = String::from_utf8(answered(&host, Choice::DenyOnce, None)).unwrap();
        assert!(done.ends_with("denied: example.com:443\r\n"), "{done}");
    }
}
