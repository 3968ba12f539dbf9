//! git's index file (`DIRC`, versions 2 to 4): each entry's name,
//! object, size, mtime and the two bits that hide it from `git status`.

pub struct Entry {
    /// Where the entry starts in the file, and its extended flags if any.
    at: usize,
    extended_at: Option<usize>,
    hash_len: usize,
    pub name: Vec<u8>,
    pub oid: Vec<u8>,
    pub size: u32,
    pub mtime: (u32, u32),
    pub assume_unchanged: bool,
    pub skip_worktree: bool,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    let four = b.get(at..at + 4).ok_or("truncated")?;
    Ok(u32::from_be_bytes(four.try_into().expect("four bytes")))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    let two = b.get(at..at + 2).ok_or("truncated")?;
    Ok(u16::from_be_bytes(two.try_into().expect("two bytes")))
}

/// git's offset varint (`decode_varint`).
fn varint(b: &[u8], at: &mut usize) -> Result<usize, String> {
    let mut c = *b.get(*at).ok_or("truncated")?;
    *at += 1;
    let mut val = (c & 127) as usize;
    while c & 128 != 0 {
        c = *b.get(*at).ok_or("truncated")?;
        *at += 1;
        val = val
            .checked_add(1)
            .and_then(|v| v.checked_mul(128))
            .ok_or("bad varint")?
            + (c & 127) as usize;
    }
    Ok(val)
}

pub fn entries(b: &[u8], hash_len: usize) -> Result<Vec<Entry>, String> {
    if b.get(..4) != Some(b"DIRC") {
        return Err("not an index".into());
    }
    let version = u32_at(b, 4)?;
    if !(2..=4).contains(&version) {
        return Err(format!("index version {version}"));
    }
    let count = u32_at(b, 8)? as usize;
    let mut at = 12;
    let mut out = Vec::with_capacity(count.min(1 << 20));
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = at;
        let mtime = (u32_at(b, at + 8)?, u32_at(b, at + 12)?);
        let size = u32_at(b, at + 36)?;
        let oid = b
            .get(at + 40..at + 40 + hash_len)
            .ok_or("truncated")?
            .to_vec();
        let flags = u16_at(b, at + 40 + hash_len)?;
        at += 40 + hash_len + 2;
        let mut extended = 0;
        let extended_at = (flags & 0x4000 != 0).then_some(at);
        if flags & 0x4000 != 0 {
            if version < 3 {
                return Err("extended flags in a version 2 index".into());
            }
            extended = u16_at(b, at)?;
            at += 2;
        }
        let strip = match version {
            4 => varint(b, &mut at)?,
            _ => 0,
        };
        let end = at
            + b.get(at..)
                .ok_or("truncated")?
                .iter()
                .position(|&c| c == 0)
                .ok_or("truncated")?;
        let name = if version == 4 {
            let keep = previous.len().checked_sub(strip).ok_or("bad prefix")?;
            let mut name = previous[..keep].to_vec();
            name.extend_from_slice(&b[at..end]);
            at = end + 1;
            name
        } else {
            let name = b[at..end].to_vec();
            // Padded with NULs to a multiple of eight from the entry's start.
            at = start + ((end - start + 8) & !7);
            name
        };
        previous.clone_from(&name);
        out.push(Entry {
            at: start,
            extended_at,
            hash_len,
            name,
            oid,
            size,
            mtime,
            assume_unchanged: flags & 0x8000 != 0,
            skip_worktree: extended & 0x4000 != 0,
        });
    }
    Ok(out)
}

/// Clears `e`'s assume-unchanged and skip-worktree bits and its cached
/// mtime, in `b`: git then compares the file with the entry again.
pub fn make_visible(b: &mut [u8], e: &Entry) {
    b[e.at + 8..e.at + 16].fill(0);
    b[e.at + 40 + e.hash_len] &= !0x80;
    if let Some(x) = e.extended_at {
        b[x] &= !0x40;
    }
}

/// The file's trailing checksum computed again (left all zeros where
/// git was told not to write one, `index.skipHash`).
pub fn seal(b: &mut [u8], hash_len: usize) -> std::io::Result<()> {
    let body = b
        .len()
        .checked_sub(hash_len)
        .ok_or_else(|| std::io::Error::other("index too short"))?;
    if b[body..].iter().all(|&c| c == 0) {
        return Ok(());
    }
    let sum: Vec<u8> = if hash_len == 32 {
        use sha2::Digest;
        sha2::Sha256::digest(&b[..body]).to_vec()
    } else {
        use sha1::Digest;
        sha1::Sha1::digest(&b[..body]).to_vec()
    };
    b[body..].copy_from_slice(&sum);
    Ok(())
}
