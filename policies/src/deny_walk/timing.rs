//! The walk's cost, in release (ignored in the suite).

/// `cargo test -p policies --release timing -- --ignored --nocapture`
#[test]
#[ignore]
fn walk_of_ten_thousand_files() {
    let dir = std::env::temp_dir().join(format!("deny-walk-timing-{}", std::process::id()));
    let ws = dir.join("ws");
    for i in 0..10_000 {
        let sub = ws.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), "x").unwrap();
    }
    let text = crate::builtin_source("default").unwrap();
    let vars = crate::Vars {
        home: dir.join("home"),
        workspace: ws.clone(),
        tmpdir: dir.join("tmp"),
    };
    std::fs::create_dir_all(&vars.tmpdir).unwrap();
    let spec = crate::load_str("default", text, &dir).unwrap();
    let policy = spec.resolve(&vars).unwrap();
    // With `default`'s protect list riding the walk, and without it,
    // alternating.
    let (mut times, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        for (protect, times) in [(true, &mut times), (false, &mut bare)] {
            let mut fs = policy.filesystem.clone();
            if !protect {
                fs.protect = crate::Protect::default();
            }
            let start = std::time::Instant::now();
            let stats = fs.expand_deny_patterns(&ws).unwrap();
            times.push(start.elapsed());
            assert_eq!(stats.entries, 10_100);
            assert_eq!(stats.protected.is_some(), protect);
        }
    }
    times.sort();
    bare.sort();
    println!(
        "walk of 10,100 entries: median {:?}, {:?} without the protect list",
        times[10], bare[10]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The walk of a workspace like one with node_modules (100,000 files in
/// 5,552 directories), without and with the cache, alternating:
/// `cargo test -p policies --release timing -- --ignored --nocapture`.
#[cfg(target_os = "linux")]
#[test]
#[ignore]
fn walk_of_a_hundred_thousand_files_cached_and_not() {
    let dir = std::env::temp_dir().join(format!("deny-walk-big-{}", std::process::id()));
    let ws = dir.join("ws");
    for i in 0..100_000 {
        let sub = ws.join(format!(
            "node_modules/p{}/lib{}/s{}",
            i / 2000,
            i / 200 % 10,
            i / 20 % 10
        ));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}.js")), "x").unwrap();
    }
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let text = crate::builtin_source("default").unwrap();
    let vars = crate::Vars {
        home: dir.join("home"),
        workspace: ws.clone(),
        tmpdir: dir.join("tmp"),
    };
    std::fs::create_dir_all(&vars.tmpdir).unwrap();
    let spec = crate::load_str("default", text, &dir).unwrap();
    let policy = spec.resolve(&vars).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut fs = policy.filesystem.clone();
    fs.expand_deny_patterns_cached(&ws, &cache).unwrap();
    let (mut plain, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        let mut fs = policy.filesystem.clone();
        let start = std::time::Instant::now();
        let stats = fs.expand_deny_patterns(&ws).unwrap();
        plain.push(start.elapsed());
        assert_eq!((stats.entries, stats.cached), (105_551, 0));
        let mut fs = policy.filesystem.clone();
        let start = std::time::Instant::now();
        let stats = fs.expand_deny_patterns_cached(&ws, &cache).unwrap();
        cached.push(start.elapsed());
        assert_eq!((stats.entries, stats.listed), (105_551, 0));
    }
    plain.sort();
    cached.sort();
    println!(
        "walk of 105,551 entries in 5,552 directories: listed {:?} ({:?} to {:?}), \
         cached {:?} ({:?} to {:?})",
        plain[5], plain[0], plain[10], cached[5], cached[0], cached[10]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
