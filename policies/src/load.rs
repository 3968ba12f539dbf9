//! Loading a policy by name or path and following its `extends`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::parse::parse;
use crate::spec::PolicySpec;

/// Loads a policy by built-in name (`"default"`, `"readonly"`) or by file
/// path (anything containing `/` or ending in `.toml`), following `extends`
/// recursively. Relative `extends` paths are relative to the extending
/// file's directory. Paths named inside the policy are not touched.
pub fn load(name_or_path: &str) -> Result<PolicySpec, PolicyError> {
    let source = Source::find(name_or_path, None)?;
    let mut loader = Loader::default();
    let mut spec = loader.load(source)?;
    spec.files = loader.files;
    Ok(spec)
}

/// Like [`load`], from text already in memory. `name` is used in messages;
/// relative `extends` paths are resolved against `base_dir`.
pub fn load_str(name: &str, text: &str, base_dir: &Path) -> Result<PolicySpec, PolicyError> {
    Loader::default().load_text(name, text, None, Some(base_dir))
}

/// The largest policy file read: the built-in ones are about 10 KiB.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Reads a policy file (or the approvals overlay, which is one): a regular
/// file of at most [`MAX_POLICY_BYTES`], as UTF-8. Anything else is an error
/// that says what the file is, so `extends = ["/dev/zero"]` or a FIFO is
/// refused at once instead of read until memory runs out, or forever.
pub fn read_policy_file(path: &Path) -> io::Result<String> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer. Symlinks are
    // followed, as for any file the person names.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    let not = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what}); a policy is a regular file"),
        )
    };
    if kind.is_dir() {
        return Err(not("a directory"));
    } else if kind.is_char_device() || kind.is_block_device() {
        return Err(not("a device"));
    } else if kind.is_fifo() || kind.is_socket() {
        return Err(not("a pipe or socket"));
    } else if !kind.is_file() {
        return Err(not("neither a file nor a directory"));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than the {} KiB a policy may be",
                MAX_POLICY_BYTES >> 10
            ),
        )
    };
    if meta.len() > MAX_POLICY_BYTES {
        return Err(too_large());
    }
    // The file may grow after the fstat: read one byte past the cap to see.
    let mut text = String::new();
    file.take(MAX_POLICY_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// A policy named by `load` or by an `extends` entry.
enum Source {
    Builtin(&'static str, &'static str),
    /// `display` is the path as messages show it; `path` is what is opened.
    File {
        display: String,
        path: PathBuf,
    },
}

/// What makes two loads the same policy, for cycle detection.
#[derive(PartialEq, Eq)]
enum Identity {
    Builtin(&'static str),
    File(PathBuf),
}

impl Source {
    /// `base_dir` is the directory of the policy that names `reference`.
    fn find(reference: &str, base_dir: Option<&Path>) -> Result<Source, PolicyError> {
        if reference.contains('/') || reference.ends_with(".toml") {
            let path = match base_dir {
                Some(base) => base.join(reference),
                None => PathBuf::from(reference),
            };
            let display = path.display().to_string();
            return Ok(Source::File { display, path });
        }
        crate::builtin_names()
            .iter()
            .find(|name| **name == reference)
            .and_then(|name| Some(Source::Builtin(name, crate::builtin_source(name)?)))
            .ok_or_else(|| PolicyError::UnknownBuiltin {
                name: reference.to_string(),
            })
    }
}

/// Tracks the chain of policies being loaded, to report cycles.
#[derive(Default)]
struct Loader {
    stack: Vec<(Option<Identity>, String)>,
    /// Every file read, as opened (absolute, symlinks kept), in order.
    files: Vec<PathBuf>,
}

impl Loader {
    fn load(&mut self, source: Source) -> Result<PolicySpec, PolicyError> {
        match source {
            Source::Builtin(name, text) => {
                self.load_text(name, text, Some(Identity::Builtin(name)), None)
            }
            Source::File { display, path } => {
                let read_error = |error| PolicyError::Read {
                    policy: display.clone(),
                    error,
                };
                let text = read_policy_file(&path).map_err(read_error)?;
                let identity = fs::canonicalize(&path).map_err(read_error)?;
                let opened = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
                if !self.files.contains(&opened) {
                    self.files.push(opened);
                }
                let base_dir = path.parent().unwrap_or(Path::new(""));
                let identity = Some(Identity::File(identity));
                self.load_text(&display, &text, identity, Some(base_dir))
            }
        }
    }

    fn load_text(
        &mut self,
        name: &str,
        text: &str,
        identity: Option<Identity>,
        base_dir: Option<&Path>,
    ) -> Result<PolicySpec, PolicyError> {
        if let Some(start) = identity.as_ref().and_then(|id| {
            self.stack
                .iter()
                .position(|(seen, _)| seen.as_ref() == Some(id))
        }) {
            let mut chain: Vec<String> =
                self.stack[start..].iter().map(|(_, n)| n.clone()).collect();
            chain.push(name.to_string());
            return Err(PolicyError::Cycle {
                policy: chain[0].clone(),
                chain,
            });
        }
        let built_in = matches!(identity, Some(Identity::Builtin(_)));
        let parsed = parse(name, text, built_in)?;
        self.stack.push((identity, name.to_string()));
        let mut merged = PolicySpec::new(name);
        for (reference, location) in parsed.extends {
            // Errors about the reference itself name the `extends` line; a
            // loader is used once, so the stack need not be unwound on error.
            let wrap = |error| PolicyError::Extends {
                location: location.clone(),
                error: Box::new(error),
            };
            let source = Source::find(&reference, base_dir).map_err(wrap)?;
            let parent = self.load(source).map_err(|error| match error {
                PolicyError::Read { .. } => wrap(error),
                other => other,
            })?;
            merged.merge(parent);
        }
        self.stack.pop();
        merged.merge(parsed.spec);
        Ok(merged)
    }
}
