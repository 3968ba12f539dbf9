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
//! package). The check is made where the name is
//! made, by the reader thread that carries out every guarded call in turn,
//! so no other name made in the sandbox comes between the check and the
//! call.

use super::*;

/// Refuses writing an extension module `M*.so` beside a `M.py` (one
/// `fstatat`), a package's `M/__init__.py` (or `__init__*.so`) beside an
/// `M.py` (one `fstatat`) unless renamed from that very source (`src`),
/// and making a new name `M.py` beside an `M*.so` or a package `M` (an
/// `fstatat`, and for a name not there yet one listing of the directory).
/// `makes`: the call makes the name if it is not there (an open with
/// `O_CREAT`, a rename's or link's destination, a symlink); a plain
/// write-open of a source is not judged.
pub(super) fn check_module(place: &Place, makes: bool, src: Option<&Place>) -> Result<(), Stop> {
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
            let refusal = judge::package_refusal(&source, false);
            return Err(Stop::Refused(place.path(), refusal));
        }
    }
    if let Some(module) = judge::extension_module(name) {
        let source = [module, b".py"].concat();
        if has_name(&place.parent, &source)? {
            let refusal = judge::extension_refusal(&source, false);
            return Err(Stop::Refused(place.path(), refusal));
        }
        return Ok(());
    }
    let Some(module) = name.strip_suffix(b".py") else {
        return Ok(());
    };
    if !makes || module.is_empty() || has_name(&place.parent, name)? {
        return Ok(());
    }
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", place.parent.as_raw_fd()))?;
    for entry in listing {
        let entry = entry?.file_name();
        let entry = entry.as_bytes();
        if judge::extension_module(entry) == Some(module) {
            let refusal = judge::extension_refusal(entry, true);
            return Err(Stop::Refused(place.path(), refusal));
        }
        if entry == module && is_package(place, module)? {
            let refusal = judge::package_refusal(entry, true);
            return Err(Stop::Refused(place.path(), refusal));
        }
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
