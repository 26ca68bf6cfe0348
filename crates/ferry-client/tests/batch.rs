//! Running plans from a caller that keeps its connection (the shell's
//! `get -r`/`mget`): the plan runs on it plus extra connections, and the
//! caller's connection is usable afterwards.

mod support;

use std::fs;

use ferry_client::{BatchOptions, BatchProgress, Client, Item, NoProgress, Progress, Skip, run_plan};
use support::{TestServer, options};

/// Bars for nobody.
struct Unseen;

impl BatchProgress for Unseen {
    fn file(&self, _item: &Item) -> Box<dyn Progress + Send + '_> {
        Box::new(NoProgress)
    }
}

#[test]
fn a_plan_runs_on_the_callers_connection_and_leaves_it_usable() {
    let server = TestServer::start(true);
    fs::create_dir_all(server.path("t/sub")).unwrap();
    for (name, body) in [("t/a", "a"), ("t/b", "bb"), ("t/sub/c", "ccc"), ("t/sub/d", "dddd")] {
        fs::write(server.path(name), body).unwrap();
    }
    let local = tempfile::tempdir().unwrap();
    let mut client = server.client();
    let connect = || Client::connect_with(&server.addr, &options());

    let plan = client.plan_get(&[b"/t"], Some(local.path()), true).unwrap();
    assert_eq!((plan.dirs.len(), plan.files.len(), plan.bytes()), (2, 4, 10));
    let options = BatchOptions { parallel: 3, ..BatchOptions::default() };
    let report = run_plan(plan, &mut client, &connect, &options, &Unseen);
    assert_eq!((report.failed(), report.moved()), (0, 10));
    assert_eq!(fs::read(local.path().join("t/sub/d")).unwrap(), b"dddd");
    client.ping().expect("the caller's connection still works");

    // Up again under another name, then nothing left to do.
    let plan = client.plan_put(&[&local.path().join("t")], Some(b"/copy"), true).unwrap();
    let report = run_plan(plan, &mut client, &connect, &options, &Unseen);
    assert_eq!(report.failed(), 0);
    assert_eq!(fs::read(server.path("copy/sub/c")).unwrap(), b"ccc");
    let plan = client.plan_put(&[&local.path().join("t")], Some(b"/"), true).unwrap();
    assert!(plan.files.iter().all(|f| f.remote.starts_with(b"/t/")), "into the existing directory");
    let options = BatchOptions { skip: Skip::Checksum, ..options };
    let report = run_plan(plan, &mut client, &connect, &options, &Unseen);
    assert_eq!((report.failed(), report.moved()), (0, 0), "same bytes: all skipped");
    client.ping().expect("still usable");
}
