//! XDG base directories, for sluice's own state and configuration.

use std::io;
use std::path::PathBuf;

/// `$VAR` when it is set to an absolute path, else `$HOME/<under_home>`,
/// as the XDG base directory specification says.
pub fn base_dir(var: &str, under_home: &str) -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("neither {var} nor HOME is set to an absolute path"),
            )
        })?;
    Ok(home.join(under_home))
}
