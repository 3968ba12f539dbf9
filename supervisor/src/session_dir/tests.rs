use super::*;
use crate::platform::liveness::is_live_in;

/// A FIFO planted as an older session's `lock` hung every later
/// `sluice run` in the sweep, opening it for a writer that never came.
/// Control: a real lock is seen held, then free.
#[test]
fn a_fifo_as_lock_does_not_hang_whoever_looks() {
    let base = std::env::temp_dir().join(format!("sluice-unit-fifo-lock-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let mode = nix::sys::stat::Mode::from_bits_retain(0o600);
    nix::unistd::mkfifo(&base.join(LEGACY_LOCK), mode).unwrap();
    let dir = open_dir(&base).unwrap();
    let open_lock =
        |dir: &File| open_beneath(dir, LEGACY_LOCK.as_bytes(), libc::O_RDONLY).map(File::from);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        done.send(open_lock(&dir).map(|l| try_lock(&l)).ok())
            .unwrap()
    });
    let taken = finished
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("opening a FIFO lock blocked");
    assert_eq!(taken, Some(true));
    fs::remove_file(base.join(LEGACY_LOCK)).unwrap();
    let held = File::create(base.join(LEGACY_LOCK)).unwrap();
    assert!(try_lock(&held));
    let dir = open_dir(&base).unwrap();
    assert!(
        !try_lock(&open_lock(&dir).unwrap()),
        "a held lock was taken"
    );
    drop(held);
    assert!(try_lock(&open_lock(&dir).unwrap()));
    fs::remove_dir_all(&base).unwrap();
}
#[test]
fn only_sixteen_lowercase_hex_digits_name_a_session() {
    assert_eq!(session_id("0123456789abcdef"), Some("0123456789abcdef"));
    for id in [
        "nested-state",
        "0123456789ABCDEF",
        "0123456789abcde",
        "0123456789abcdef0",
        ".0123456789abcdef",
        "0123456789abcdeg",
    ] {
        assert_eq!(session_id(id), None, "{id}");
    }
}

fn record_naming(text: &[u8]) -> File {
    let path = std::env::temp_dir().join(format!(
        "sluice-unit-record-{}-{}",
        std::process::id(),
        text.len()
    ));
    fs::write(&path, text).unwrap();
    let file = File::open(&path).unwrap();
    fs::remove_file(&path).unwrap();
    file
}

#[test]
fn a_record_is_trusted_only_when_it_names_a_session_directory_of_sluice() {
    let id = "0123456789abcdef";
    let parent = format!("/tmp/{PREFIX}{}", euid());
    let good = format!("{parent}/{id}\n");
    assert_eq!(
        recorded_parent(&record_naming(good.as_bytes()), id),
        Some(PathBuf::from(&parent))
    );
    for bad in [
        format!("{parent}/{id}"),
        format!("{parent}/fedcba9876543210\n"),
        format!("{parent}/../{id}\n"),
        format!("/home/me/{id}\n"),
        format!("tmp/{PREFIX}{}/{id}\n", euid()),
        format!("/tmp/{PREFIX}{}/x/../{id}\n", euid()),
        format!("/{id}\n"),
        String::new(),
    ] {
        assert_eq!(
            recorded_parent(&record_naming(bad.as_bytes()), id),
            None,
            "{bad:?}"
        );
    }
}

#[test]
fn a_session_is_live_while_its_directory_is_held_and_not_after() {
    let records = std::env::temp_dir().join(format!("sluice-unit-records-{}", std::process::id()));
    let id = "00000000000000ee";
    let dir = SessionDir::create(id, &records).unwrap();
    assert!(is_live_in(&records, id));
    assert!(!is_live_in(&records, "00000000000000ef"));
    assert!(!is_live_in(&records, "../sessions"));
    let tmp = dir.tmp();
    assert!(tmp.is_dir());
    drop(dir);
    assert!(!is_live_in(&records, id));
    assert!(!tmp.exists(), "the session directory stayed");
    assert!(!records.join(id).exists(), "the record stayed");
    fs::remove_dir(&records).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A finished session's directory, emptied, waits as a spare and is
/// the next session's (its `tmp/` new); at most `MAX_SPARES` wait.
/// Attacks: what is planted as a spare (a symlink to a directory
/// elsewhere, a directory holding a file, one another user's mode) is
/// never taken: it is removed and a new directory made, the symlink's
/// target untouched.
#[test]
fn only_an_empty_directory_of_ours_is_taken_as_a_spare() {
    let base = std::env::temp_dir().join(format!("sluice-unit-spares-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
    let (a, b) = ("00000000000000a1", "00000000000000a2");
    // Control: made, used, retired, taken.
    make_session_dir(&base, a).unwrap();
    fs::write(base.join(a).join("tmp/left"), "x").unwrap();
    let first = ino(&base.join(a));
    retire_session(&base, a).unwrap();
    assert_eq!(entries(&base), [format!("{SPARE}{a}")]);
    make_session_dir(&base, b).unwrap();
    assert_eq!(ino(&base.join(b)), first, "the spare was not taken");
    assert_eq!(entries(&base.join(b)), ["tmp"]);
    assert!(entries(&base.join(b).join("tmp")).is_empty());
    retire_session(&base, b).unwrap();
    assert_eq!(entries(&base), [format!("{SPARE}{b}")]);
    fs::remove_dir(base.join(format!("{SPARE}{b}"))).unwrap();
    // At most MAX_SPARES wait; the rest are removed.
    let ids: Vec<String> = (0..MAX_SPARES + 2)
        .map(|i| format!("00000000000000b{i}"))
        .collect();
    for id in &ids {
        make_session_dir(&base, id).unwrap();
    }
    for id in &ids {
        retire_session(&base, id).unwrap();
    }
    assert_eq!(entries(&base).len(), MAX_SPARES);
    for name in entries(&base) {
        fs::remove_dir(base.join(name)).unwrap();
    }
    // Attacks, each the only spare.
    let outside = base.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "s").unwrap();
    let id = "00000000000000c1";
    std::os::unix::fs::symlink(&outside, base.join(format!("{SPARE}x"))).unwrap();
    make_session_dir(&base, id).unwrap();
    assert!(fs::symlink_metadata(base.join(id)).unwrap().is_dir());
    assert_eq!(entries(&base.join(id)), ["tmp"]);
    assert_eq!(entries(&outside), ["secret"], "the symlink was followed");
    remove_session(&base, id).unwrap();
    let planted = base.join(format!("{SPARE}y"));
    fs::create_dir(&planted).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(planted.join("planted"), "p").unwrap();
    make_session_dir(&base, id).unwrap();
    assert_eq!(entries(&base.join(id)), ["tmp"], "a full spare was taken");
    remove_session(&base, id).unwrap();
    let open = base.join(format!("{SPARE}z"));
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    make_session_dir(&base, id).unwrap();
    let made = fs::metadata(base.join(id)).unwrap();
    assert_eq!(
        made.mode() & 0o7777,
        0o700,
        "a spare of another mode was taken"
    );
    remove_session(&base, id).unwrap();
    assert_eq!(entries(&base), ["outside"], "a planted spare stayed");
    fs::remove_dir_all(&base).unwrap();
}

/// The mount point of Python's bytecode cache, set aside at a session's
/// end when empty, is the next session's (renamed in); at most
/// `MAX_ASIDE` wait. Attacks: what is found aside but is not an empty
/// directory of ours, mode 0700 (a symlink to a directory elsewhere, a
/// directory holding a file) is removed and a new directory made, the
/// symlink's target untouched; a directory that holds anything (the
/// program's, where the overlay was not mounted) is not set aside.
#[test]
fn only_an_empty_directory_of_ours_is_taken_from_aside() {
    let base = std::env::temp_dir().join(format!("sluice-unit-aside-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let (a, b) = ("00000000000000a1", "00000000000000a2");
    for id in [a, b] {
        fs::create_dir_all(base.join(id).join("tmp")).unwrap();
    }
    let rel = |id: &str| Path::new(id).join("tmp/pycache");
    // Control: made, set aside, taken.
    make_from_aside(&base, &rel(a)).unwrap();
    let ino = fs::metadata(base.join(rel(a))).unwrap().ino();
    assert!(set_aside(&base.join(rel(a)), &base.join(a)));
    assert_eq!(asides(&base).len(), 1);
    make_from_aside(&base, &rel(b)).unwrap();
    assert_eq!(fs::metadata(base.join(rel(b))).unwrap().ino(), ino);
    assert!(asides(&base).is_empty());
    // One holding a file is not set aside.
    fs::write(base.join(rel(b)).join("x.pyc"), "x").unwrap();
    assert!(!set_aside(&base.join(rel(b)), &base.join(b)));
    fs::remove_dir_all(base.join(rel(b))).unwrap();
    // Planted asides: a symlink, a full directory, another mode.
    let outside = base.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("kept"), "k").unwrap();
    std::os::unix::fs::symlink(&outside, base.join(format!("{ASIDE}x"))).unwrap();
    make_from_aside(&base, &rel(b)).unwrap();
    let made = fs::symlink_metadata(base.join(rel(b))).unwrap();
    assert!(made.is_dir(), "a symlink was taken");
    assert_eq!(entries(&outside), ["kept"], "the symlink was followed");
    fs::remove_dir(base.join(rel(b))).unwrap();
    let full = base.join(format!("{ASIDE}y"));
    fs::create_dir(&full).unwrap();
    fs::set_permissions(&full, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(full.join("planted.pyc"), "p").unwrap();
    make_from_aside(&base, &rel(b)).unwrap();
    assert!(
        entries(&base.join(rel(b))).is_empty(),
        "a full one was taken"
    );
    fs::remove_dir(base.join(rel(b))).unwrap();
    let open = base.join(format!("{ASIDE}z"));
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    make_from_aside(&base, &rel(b)).unwrap();
    let mode = fs::metadata(base.join(rel(b))).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o700, "one of another mode was taken");
    // At most MAX_ASIDE wait.
    fs::remove_dir(base.join(rel(b))).unwrap();
    let ids: Vec<String> = (0..MAX_ASIDE + 1)
        .map(|i| format!("00000000000000c{i}"))
        .collect();
    for id in &ids {
        fs::create_dir_all(base.join(id).join("tmp")).unwrap();
        make_from_aside(&base, &rel(id)).unwrap();
    }
    for id in &ids {
        set_aside(&base.join(rel(id)), &base.join(id));
    }
    assert_eq!(asides(&base).len(), MAX_ASIDE);
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn removing_a_tree_opens_its_unreadable_directories_and_follows_no_symlink() {
    let base = std::env::temp_dir().join(format!("sluice-unit-removable-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let (tree, outside) = (base.join("tree"), base.join("outside"));
    for dir in [tree.join("a/b/c"), outside.join("d")] {
        fs::create_dir_all(dir).unwrap();
    }
    let file = outside.join("file");
    fs::write(&file, "x").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(outside.join("d"), fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::symlink(&file, tree.join("a/to-file")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("a/to-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("d"), tree.join("a/to-locked")).unwrap();
    for dir in [tree.join("a/b/c"), tree.join("a/b"), tree.join("a")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).unwrap();
    }
    let base_dir = open_dir(&base).unwrap();
    remove_entry(&base_dir, b"tree").unwrap();
    assert!(
        fs::symlink_metadata(&tree).is_err(),
        "the tree is still there"
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&file), 0o644, "followed a symlink to a file");
    assert_eq!(
        mode(&outside.join("d")),
        0o000,
        "followed a symlink to a directory"
    );
    fs::set_permissions(outside.join("d"), fs::Permissions::from_mode(0o700)).unwrap();
    remove_entry(&base_dir, b"tree").expect("a missing entry is not an error");
    fs::remove_dir_all(&base).unwrap();
}
