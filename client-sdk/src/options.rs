//! `OpenOptions`: what to ask the broker to open, checked like std's.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use proto::{Access, OpenFlags, RequestBody};

/// How to open a file through the broker; a builder like
/// [`std::fs::OpenOptions`], with the same rules.
///
/// The request carries exactly these flags: the SDK never asks for more
/// access than was set here. The broker may still refuse any of them.
///
/// ```
/// use client_sdk::OpenOptions;
///
/// let read = OpenOptions::new().read(true).clone();
/// let mut log = OpenOptions::new();
/// log.append(true).create(true).mode(0o600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    /// Sent as they are ([`proto::OpenFlags`]).
    flags: OpenFlags,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off, mode `0o666` (before the umask), as std.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            flags: OpenFlags {
                mode: 0o666,
                ..OpenFlags::default()
            },
        }
    }

    /// Read access.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.read = read;
        self
    }

    /// Write access.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    /// `O_APPEND`; implies write access, as in std.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.flags.append = append;
        self
    }

    /// `O_TRUNC`; needs write access (and not append).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.flags.truncate = truncate;
        self
    }

    /// `O_CREAT`; needs write or append access.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.flags.create = create;
        self
    }

    /// `O_DIRECTORY`: the path must be a directory; read access only.
    pub fn directory(&mut self, directory: bool) -> &mut OpenOptions {
        self.flags.directory = directory;
        self
    }

    /// Permission bits for a created file (before the umask of the broker's
    /// open); at most `0o7777`.
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.flags.mode = mode;
        self
    }

    /// The access mode these options ask for, or `InvalidInput` as
    /// `std::fs::OpenOptions::open` would give.
    pub fn access(&self) -> io::Result<Access> {
        let f = &self.flags;
        let access = match (self.read, self.write || f.append) {
            (true, false) => Access::Read,
            (false, true) => Access::Write,
            (true, true) => Access::ReadWrite,
            (false, false) => return Err(invalid("no access mode: set read, write or append")),
        };
        if !access.wants_write() && (f.truncate || f.create) {
            return Err(invalid("create and truncate need write or append access"));
        }
        if f.append && f.truncate {
            return Err(invalid("truncate and append cannot be combined"));
        }
        if f.directory && access != Access::Read {
            return Err(invalid("a directory can only be opened for reading"));
        }
        if f.mode & !0o7777 != 0 {
            return Err(invalid("mode has bits above 0o7777"));
        }
        Ok(access)
    }

    /// The request for opening `path` with these options. The path is sent
    /// as given, as bytes; a relative one is resolved by the broker against
    /// the requesting process's working directory.
    pub(crate) fn request(&self, path: &Path) -> io::Result<RequestBody> {
        let access = self.access()?;
        Ok(RequestBody::Open {
            path: path_bytes(path),
            access,
            flags: self.flags,
        })
    }
}

/// A path as the protocol carries it: its bytes, as given.
pub(crate) fn path_bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(opts: &OpenOptions) -> io::Result<Access> {
        opts.access()
    }

    #[test]
    fn access_modes_follow_std() {
        assert_eq!(check(OpenOptions::new().read(true)).unwrap(), Access::Read);
        assert_eq!(
            check(OpenOptions::new().write(true)).unwrap(),
            Access::Write
        );
        assert_eq!(
            check(OpenOptions::new().append(true)).unwrap(),
            Access::Write
        );
        assert_eq!(
            check(OpenOptions::new().read(true).write(true)).unwrap(),
            Access::ReadWrite
        );
        assert_eq!(
            check(OpenOptions::new().read(true).append(true)).unwrap(),
            Access::ReadWrite
        );
        assert_eq!(
            check(OpenOptions::new().write(true).create(true).truncate(true)).unwrap(),
            Access::Write
        );
        assert_eq!(
            check(OpenOptions::new().append(true).create(true)).unwrap(),
            Access::Write
        );
        assert_eq!(
            check(OpenOptions::new().read(true).directory(true)).unwrap(),
            Access::Read
        );
    }

    #[test]
    fn invalid_combinations_are_invalid_input() {
        let bad = [
            OpenOptions::new().clone(),
            OpenOptions::new().create(true).clone(),
            OpenOptions::new().read(true).create(true).clone(),
            OpenOptions::new().read(true).truncate(true).clone(),
            OpenOptions::new().append(true).truncate(true).clone(),
            OpenOptions::new().write(true).directory(true).clone(),
            OpenOptions::new().write(true).mode(0o10000).clone(),
        ];
        for opts in bad {
            let err = opts.access().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{opts:?}");
            let err = opts.request(Path::new("/x")).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{opts:?}");
        }
    }

    #[test]
    fn the_request_carries_exactly_the_options_and_the_path_bytes() {
        use std::ffi::OsStr;
        let path = Path::new(OsStr::from_bytes(b"rel/\xff.txt"));
        let body = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .request(path)
            .unwrap();
        assert_eq!(
            body,
            RequestBody::Open {
                path: b"rel/\xff.txt".to_vec(),
                access: Access::Write,
                flags: OpenFlags {
                    create: true,
                    truncate: false,
                    append: true,
                    directory: false,
                    mode: 0o640,
                },
            }
        );
    }
}
