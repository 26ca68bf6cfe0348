//! Unit tests of the served root: resolution, confinement, listings.

use super::*;

fn root() -> (Root, PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("ferry-root-test-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub/deeper")).expect("mkdir");
    std::fs::write(dir.join("sub/file.txt"), b"hello").expect("write");
    (Root::open(&dir).expect("open root"), dir)
}

fn vp(root: &Root, cwd: &VirtualPath, p: &str) -> Result<VirtualPath, FsError> {
    root.resolve(cwd, p.as_bytes())
}

#[test]
fn resolve_folds_dots_and_refuses_escape() {
    let (r, dir) = root();
    let cwd = vp(&r, &VirtualPath::root(), "/sub").expect("sub");
    assert_eq!(vp(&r, &cwd, "deeper/../file.txt").expect("ok").to_bytes(), b"/sub/file.txt");
    assert_eq!(vp(&r, &cwd, "/").expect("ok").to_bytes(), b"/");
    assert_eq!(vp(&r, &cwd, "..").expect("ok").to_bytes(), b"/");
    assert!(matches!(vp(&r, &cwd, "../.."), Err(FsError::Escapes)));
    assert!(matches!(vp(&r, &cwd, "/../etc/passwd"), Err(FsError::Escapes)));
    assert!(matches!(r.resolve(&cwd, b"a\0b"), Err(FsError::BadPath(_))));
    assert!(matches!(vp(&r, &cwd, &"x".repeat(300)), Err(FsError::BadPath(_))));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn kernel_refuses_symlinks_out_of_the_root() {
    let (r, dir) = root();
    std::os::unix::fs::symlink("/etc", dir.join("etc-abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../etc/passwd", dir.join("sub/up")).expect("symlink");
    std::os::unix::fs::symlink("file.txt", dir.join("sub/inside")).expect("symlink");
    std::os::unix::fs::symlink("loop", dir.join("loop")).expect("symlink");
    let top = VirtualPath::root();
    assert!(matches!(r.open_file(&vp(&r, &top, "etc-abs/passwd").expect("lexically fine")), Err(FsError::Escapes)));
    assert!(matches!(r.open_file(&vp(&r, &top, "sub/up").expect("lexically fine")), Err(FsError::Escapes)));
    assert!(matches!(r.open_file(&vp(&r, &top, "loop").expect("lexically fine")), Err(FsError::SymlinkLoop)));
    let (_, meta) = r.open_file(&vp(&r, &top, "sub/inside").expect("ok")).expect("symlink inside the root is followed");
    assert_eq!(meta.size, 5);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn list_mkdir_remove() {
    let (r, dir) = root();
    let top = VirtualPath::root();
    let sub = vp(&r, &top, "sub").expect("ok");
    let names: Vec<_> = r.list(&sub).expect("list").into_iter().map(|e| (e.name, e.meta.kind)).collect();
    assert_eq!(names, vec![("deeper".into(), Kind::Dir), ("file.txt".into(), Kind::File)]);
    let new = vp(&r, &top, "sub/new").expect("ok");
    r.mkdir(&new).expect("mkdir");
    assert!(matches!(r.mkdir(&new), Err(FsError::Exists)));
    r.remove(&new).expect("rmdir");
    assert!(matches!(r.remove(&sub), Err(FsError::NotEmpty)));
    assert!(matches!(r.remove(&top), Err(FsError::BadPath(_))));
    assert!(matches!(r.open_file(&sub), Err(FsError::IsADirectory)));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn hidden_names_are_refused_and_unlisted_unless_shown() {
    let (r, dir) = root();
    std::fs::create_dir_all(dir.join(".git")).expect("mkdir");
    std::fs::write(dir.join(".git/config"), b"x").expect("write");
    std::fs::write(dir.join("sub/.env"), b"x").expect("write");
    let top = VirtualPath::root();
    for path in [".git", ".git/config", "/sub/.env", "sub/../.git/x"] {
        assert!(matches!(vp(&r, &top, path), Err(FsError::Hidden)), "{path}");
    }
    assert_eq!(vp(&r, &top, ".git/..").expect("folded away").to_bytes(), b"/");
    assert!(matches!(vp(&r, &top, ".ferry-partials"), Err(FsError::BadPath(_))), "still reserved");
    let names = |r: &Root, p: &str| -> Vec<OsString> {
        r.list(&vp(r, &top, p).expect("ok")).expect("list").into_iter().map(|e| e.name).collect()
    };
    assert_eq!(names(&r, "/"), ["sub"]);
    assert_eq!(names(&r, "/sub"), ["deeper", "file.txt"]);
    let shown = Root::open(&dir).expect("open").with_visibility(Visibility::SHOW_HIDDEN);
    assert_eq!(shown.open_file(&vp(&shown, &top, ".git/config").expect("ok")).expect("open").1.size, 1);
    assert_eq!(names(&shown, "/"), [".git", "sub"]);
    assert!(matches!(vp(&shown, &top, ".ferry-partials/x"), Err(FsError::BadPath(_))), "reserved even shown");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn listings_leave_out_symlinks_that_escape_and_follow_the_others() {
    let (r, dir) = root();
    std::os::unix::fs::symlink("/etc", dir.join("etc-abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../etc", dir.join("sub/up")).expect("symlink");
    std::os::unix::fs::symlink("file.txt", dir.join("sub/inside")).expect("symlink");
    std::os::unix::fs::symlink("nothing", dir.join("sub/dangling")).expect("symlink");
    let top = VirtualPath::root();
    let list = |p: &str| -> Vec<(OsString, Kind, Option<Kind>)> {
        let entries = r.list(&vp(&r, &top, p).expect("ok")).expect("list");
        entries.into_iter().map(|e| (e.name, e.meta.kind, e.target.map(|t| t.kind))).collect()
    };
    assert_eq!(list("/"), [("sub".into(), Kind::Dir, None)]);
    assert_eq!(
        list("/sub"),
        [
            ("dangling".into(), Kind::Symlink, None),
            ("deeper".into(), Kind::Dir, None),
            ("file.txt".into(), Kind::File, None),
            ("inside".into(), Kind::Symlink, Some(Kind::File)),
        ]
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn rename_is_confined_replaces_files_never_directories() {
    let (r, dir) = root();
    std::fs::write(dir.join("a.txt"), b"A").expect("write");
    std::fs::write(dir.join("b.txt"), b"B").expect("write");
    std::os::unix::fs::symlink("/tmp", dir.join("out")).expect("symlink");
    let top = VirtualPath::root();
    let p = |s: &str| vp(&r, &top, s).expect("lexically fine");
    r.rename(&p("a.txt"), &p("sub/deeper/moved.txt"), true).expect("rename into a directory below");
    assert_eq!(std::fs::read(dir.join("sub/deeper/moved.txt")).expect("moved"), b"A");
    assert!(!dir.join("a.txt").exists());
    assert!(matches!(r.rename(&p("sub/deeper/moved.txt"), &p("b.txt"), false), Err((FsError::Exists, _))));
    r.rename(&p("sub/deeper/moved.txt"), &p("b.txt"), true).expect("replaces a file");
    assert_eq!(std::fs::read(dir.join("b.txt")).expect("replaced"), b"A");
    let fails =
        |from: &str, to: &str| r.rename(&p(from), &p(to), true).map_err(|(e, at)| (e, at.to_bytes())).unwrap_err();
    assert!(matches!(fails("b.txt", "sub"), (FsError::IsADirectory, at) if at == b"/sub"));
    assert!(matches!(fails("nothing", "x"), (FsError::NotFound, at) if at == b"/nothing"));
    assert!(matches!(fails("b.txt", "no/x"), (FsError::NotFound, at) if at == b"/no/x"));
    assert!(matches!(fails("sub", "sub/deeper/sub"), (FsError::BadPath(_), _)));
    assert!(matches!(fails("/", "x"), (FsError::BadPath(_), _)));
    assert!(matches!(fails("b.txt", "out/b.txt"), (FsError::Escapes, _)), "a parent through a link out");
    assert!(!std::path::Path::new("/tmp/b.txt").exists() || std::fs::read("/tmp/b.txt").ok() != Some(b"A".to_vec()));
    r.rename(&p("sub"), &p("renamed"), true).expect("directories move too");
    assert!(dir.join("renamed/deeper").is_dir());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn disk_space_is_the_root_filesystems() {
    let (r, dir) = root();
    let space = r.disk_space().expect("statvfs");
    assert!(space.total > 0 && space.free <= space.total && space.available <= space.free, "{space:?}");
    std::fs::remove_dir_all(dir).ok();
}
