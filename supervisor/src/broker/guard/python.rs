//! No Python extension module is made beside the source of the same
//! module, nor that source beside it: Python's `FileFinder` tries the
//! extension suffixes (`.cpython-3X-ARCH.so`, `.abi3.so`, `.so`) before
//! `.py`, and `*.so` is in every Python `.gitignore`, so an `a.so` the
//! program builds beside the person's clean `a.py` ran in its place with
//! nothing shown by their review. The check is made where the name is
//! made, by the reader thread that carries out every guarded call in turn,
//! so no other name made in the sandbox comes between the check and the
//! call.

use super::*;

/// Refuses writing an extension module `M*.so` beside a `M.py` (one
/// `fstatat`), and making a new name `M.py` beside an `M*.so` (an
/// `fstatat`, and for a name not there yet one listing of the directory).
/// `makes`: the call makes the name if it is not there (an open with
/// `O_CREAT`, a rename's or link's destination, a symlink); a plain
/// write-open of a source is not judged.
pub(super) fn check_module(place: &Place, makes: bool) -> Result<(), Stop> {
    let name = &place.name;
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
        if judge::extension_module(entry.as_bytes()) == Some(module) {
            let refusal = judge::extension_refusal(entry.as_bytes(), true);
            return Err(Stop::Refused(place.path(), refusal));
        }
    }
    Ok(())
}
