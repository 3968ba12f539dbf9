use super::*;
use serde_json::json;

struct Setup {
    _dir: tempfile::TempDir,
    real: PathBuf,
    kept: PathBuf,
    item: Item,
}

fn setup(launch: &Value) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join(".claude.json");
    let kept = dir.path().join("kept");
    fs::write(&real, serde_json::to_vec(launch).unwrap()).unwrap();
    let item = copy_file(real.clone(), dir.path().join("copy")).unwrap();
    Setup {
        _dir: dir,
        real,
        kept,
        item,
    }
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_programs_state_is_written_back_without_its_commands() {
    let s = setup(&json!({"numStartups": 1}));
    let program = json!({"numStartups": 2, "mcpServers": {"x": {"command": "sh"}}});
    fs::write(&s.item.copy, serde_json::to_vec(&program).unwrap()).unwrap();
    let said = write_back(&s.item, &s.kept, "S").unwrap().unwrap();
    assert_eq!(read(&s.real), json!({"numStartups": 2}));
    assert!(said.contains("mcpServers"), "{said}");
    // The program's copy, whole, for the person to look at.
    assert_eq!(read(&s.kept.join("S-claude.json")), program);
}

#[test]
fn an_outside_change_during_the_session_is_kept() {
    let s = setup(&json!({"numStartups": 1, "theme": "dark"}));
    fs::write(
        &s.real,
        br#"{"numStartups": 1, "theme": "light", "mcpServers": {"p": {}}}"#,
    )
    .unwrap();
    fs::write(&s.item.copy, br#"{"numStartups": 5, "theme": "dark"}"#).unwrap();
    assert_eq!(write_back(&s.item, &s.kept, "S").unwrap(), None);
    assert_eq!(
        read(&s.real),
        json!({"numStartups": 5, "theme": "light", "mcpServers": {"p": {}}})
    );
    // Both changed it: the outside's stays, and the person is told.
    fs::write(&s.item.copy, br#"{"numStartups": 5, "theme": "blue"}"#).unwrap();
    let said = write_back(&s.item, &s.kept, "T").unwrap().unwrap();
    assert!(said.contains("kept the outside's theme"), "{said}");
    assert_eq!(read(&s.real)["theme"], json!("light"));
}

#[test]
fn a_copy_that_does_not_parse_changes_nothing() {
    let s = setup(&json!({"numStartups": 1}));
    fs::write(&s.item.copy, b"{\"mcpServers\": ").unwrap();
    let said = write_back(&s.item, &s.kept, "S").unwrap().unwrap();
    assert!(said.contains("unreadable"), "{said}");
    assert_eq!(read(&s.real), json!({"numStartups": 1}));
    assert_eq!(
        fs::read(s.kept.join("S-claude.json")).unwrap(),
        b"{\"mcpServers\": "
    );
}

#[test]
fn an_unchanged_copy_leaves_the_file_alone() {
    let s = setup(&json!({"numStartups": 1}));
    let before = fs::metadata(&s.real).unwrap().ino();
    assert_eq!(write_back(&s.item, &s.kept, "S").unwrap(), None);
    assert_eq!(fs::metadata(&s.real).unwrap().ino(), before);
}

#[test]
fn a_missing_file_is_made_and_a_symlink_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join(".claude.json");
    let item = copy_file(real.clone(), dir.path().join("copy")).unwrap();
    assert_eq!(read(&real), json!({}));
    assert_eq!(item.launch, b"{}\n");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = copy_file(link, dir.path().join("copy2")).unwrap_err();
    assert!(format!("{e:#}").contains("is a symlink"), "{e:#}");
}

#[test]
fn the_file_written_back_keeps_its_owner() {
    // Root writing a user's file (run as root here; as a user the file is
    // the user's whatever happens).
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let s = setup(&json!({"numStartups": 1}));
    std::os::unix::fs::chown(&s.real, Some(65534), Some(65534)).unwrap();
    fs::write(&s.item.copy, br#"{"numStartups": 2}"#).unwrap();
    assert_eq!(write_back(&s.item, &s.kept, "S").unwrap(), None);
    assert_eq!(read(&s.real), json!({"numStartups": 2}));
    let meta = fs::metadata(&s.real).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
}
