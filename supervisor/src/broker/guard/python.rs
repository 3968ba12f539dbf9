//! No Python extension module is made beside the source of the same
//! module, nor that source beside it: Python's `FileFinder` tries the
//! extension suffixes (`.cpython-3X-ARCH.so`, `.abi3.so`, `.so`) before
//! `.py`, and `*.so` is in every Python `.gitignore`, so an `a.so` the
//! program builds beside the person's clean `a.py` ran in its place with
//! nothing shown by their review. A package wins over both (`a/__init__.py`
//! beside `a.py`), and a directory holding a `.gitignore` of `*` hides it
//! from `git status`: no package is made beside a source of its name
//! either, nor that source beside one, but by moving the source in
//! (`git mv a.py a/__init__.py`, an agent turning a module into a
//! package). The check is made where the name is made, by the reader
//! thread that carries out every guarded call in turn, so no other name
//! made in the sandbox comes between the check and the call.

use std::collections::HashMap;

use super::*;

/// The extension modules the guard knows in each directory (by device
/// and inode, which a rename keeps): listed once when a source is first
/// made in it, then added to as the guard makes them (every name made in
/// the sandbox is made by the guard, in turn). A name removed since (an
/// `unlink` the guard does not see) stays here, and is looked for again
/// before anything is refused. So a new source costs an `fstat` and a
/// lookup, not a listing of its directory each time (a code generator's
/// thousands of modules in one directory).
#[derive(Default)]
pub struct Extensions {
    dirs: Mutex<HashMap<(u64, u64), Listed>>,
}

/// A directory's extension modules: module name to file names.
type Listed = HashMap<Vec<u8>, Vec<Vec<u8>>>;

/// Directories remembered at most; then forgotten and listed again.
const MAX_DIRS: usize = 4096;

impl Extensions {
    fn key(dir: &OwnedFd) -> io::Result<(u64, u64)> {
        let st = sys::fs::fstat(dir)?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Remembers that `dir` holds the extension module file `name` (of
    /// `module`), if the directory is known.
    fn made(&self, dir: &OwnedFd, module: &[u8], name: &[u8]) -> io::Result<()> {
        let key = Self::key(dir)?;
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(listed) = dirs.get_mut(&key) {
            let names = listed.entry(module.to_vec()).or_default();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_vec());
            }
        }
        Ok(())
    }

    /// An extension module file of `module` in `dir` now, if any.
    fn of(&self, dir: &OwnedFd, module: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let key = Self::key(dir)?;
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if !dirs.contains_key(&key) {
            if dirs.len() >= MAX_DIRS {
                dirs.clear();
            }
            let mut listed = Listed::new();
            for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
                let entry = entry?.file_name();
                if let Some(module) = judge::extension_module(entry.as_bytes()) {
                    let names: &mut Vec<Vec<u8>> = listed.entry(module.to_vec()).or_default();
                    names.push(entry.as_bytes().to_vec());
                }
            }
            dirs.insert(key, listed);
        }
        let names = (dirs.get(&key))
            .and_then(|listed| listed.get(module))
            .cloned();
        drop(dirs);
        for name in names.unwrap_or_default() {
            if has_name(dir, &name)? {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }
}

/// Refuses writing an extension module `M*.so` beside a `M.py` (one
/// `fstatat`), a package's `M/__init__.py` (or `__init__*.so`) beside an
/// `M.py` (one `fstatat`) unless renamed from that very source (`src`),
/// and making a new name `M.py` beside an `M*.so` ([`Extensions`]: an
/// `fstat`) or a package `M` (an `fstatat`). `makes`: the call makes the
/// name if it is not there (an open with `O_CREAT`, a rename's or link's
/// destination, a symlink); a plain write-open of a source is not judged.
pub(super) fn check_module(
    guard: &Guard,
    place: &Place,
    makes: bool,
    src: Option<&Place>,
) -> Result<(), Stop> {
    let name = &place.name;
    if judge::is_package_init(name) {
        let Some(package) = place.real.file_name() else {
            return Ok(());
        };
        let source = [package.as_bytes(), b".py"].concat();
        let moved_in = src.is_some_and(|src| {
            src.name == source && Some(src.real.as_path()) == place.real.parent()
        });
        if !moved_in && has_name(&place.parent, &[b"../", &source[..]].concat())? {
            let refusal = judge::shadow_refusal(judge::Shadow::Package, &source, false);
            return Err(Stop::Refused(place.path(), refusal));
        }
    }
    if let Some(module) = judge::extension_module(name) {
        let source = [module, b".py"].concat();
        if has_name(&place.parent, &source)? {
            let refusal = judge::shadow_refusal(judge::Shadow::Extension, &source, false);
            return Err(Stop::Refused(place.path(), refusal));
        }
        guard.extensions.made(&place.parent, module, name)?;
        return Ok(());
    }
    let Some(module) = name.strip_suffix(b".py") else {
        return Ok(());
    };
    if !makes || module.is_empty() || has_name(&place.parent, name)? {
        return Ok(());
    }
    if let Some(extension) = guard.extensions.of(&place.parent, module)? {
        let refusal = judge::shadow_refusal(judge::Shadow::Extension, &extension, true);
        return Err(Stop::Refused(place.path(), refusal));
    }
    if is_package(place, module)? {
        let refusal = judge::shadow_refusal(judge::Shadow::Package, module, true);
        return Err(Stop::Refused(place.path(), refusal));
    }
    Ok(())
}

/// Whether the directory of `place` holds a package `module`: a directory
/// with an `__init__.py` (or an extension module `__init__`), a symlink
/// not followed at its `__init__`.
fn is_package(place: &Place, module: &[u8]) -> Result<bool, Stop> {
    let dir = [module, b"/"].concat();
    if has_name(&place.parent, &[&dir[..], b"__init__.py"].concat())? {
        return Ok(true);
    }
    let path = [
        b"/proc/self/fd/",
        place.parent.as_raw_fd().to_string().as_bytes(),
        b"/",
        module,
    ]
    .concat();
    let listing = match std::fs::read_dir(OsStr::from_bytes(&path)) {
        Ok(listing) => listing,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ENOENT)) => {
            return Ok(false)
        }
        Err(e) => return Err(e.into()),
    };
    for entry in listing {
        if judge::is_package_init(entry?.file_name().as_bytes()) {
            return Ok(true);
        }
    }
    Ok(false)
}
