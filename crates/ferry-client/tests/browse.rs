//! Browsing commands and raw requests against a real in-process server.

mod support;

use std::fs;

use ferry_client::{Kind, Reply};
use support::TestServer;

#[test]
fn pwd_cd_ls_stat_sum_mkdir_rm() {
    let server = TestServer::start(true);
    fs::create_dir(server.path("sub")).unwrap();
    fs::write(server.path("sub/hello.txt"), b"Hello, world!").unwrap();
    fs::write(server.path("sub/odd\nname"), b"").unwrap();
    let mut client = server.client();

    assert_eq!(client.pwd().unwrap(), "/");
    assert_eq!(client.cd(b"sub").unwrap(), "/sub");
    assert_eq!(client.pwd().unwrap(), "/sub");

    let entries = client.ls(None).unwrap();
    let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(names, [&b"hello.txt"[..], b"odd\nname"]);
    assert_eq!((entries[0].kind, entries[0].size), (Kind::File, 13));
    assert_eq!(client.ls(Some(b"/")).unwrap()[0].kind, Kind::Dir);

    let stat = client.stat(b"hello.txt").unwrap();
    assert_eq!((stat.kind, stat.size, stat.name.as_slice()), (Kind::File, 13, &b"/sub/hello.txt"[..]));
    assert_eq!(client.sum(b"hello.txt").unwrap(), "315f5bdb76d078c43b8ac0064e4a0164612b1fce77c869345bfc94c75894edd3");

    client.mkdir(b"new dir").unwrap();
    assert!(server.path("sub/new dir").is_dir());
    client.rm(b"new dir").unwrap();
    assert!(!server.path("sub/new dir").exists());
    client.ping().unwrap();
    client.quit().unwrap();
}

#[test]
fn raw_requests_return_reply_and_payload() {
    let server = TestServer::start(false);
    fs::write(server.path("a.txt"), b"abc").unwrap();
    let mut client = server.client();

    let answer = client.request("ls").unwrap();
    assert!(matches!(answer.reply, Reply::Ok(_)));
    let listing = String::from_utf8(answer.payload.unwrap()).unwrap();
    assert!(listing.starts_with("f 3 ") && listing.ends_with(" a.txt\n"), "{listing}");

    let answer = client.request("HELP").unwrap();
    assert!(String::from_utf8_lossy(&answer.payload.unwrap()).contains("pwd"));

    let answer = client.request("cd \"no such\"").unwrap();
    assert!(matches!(answer.reply, Reply::Err { code: 404, .. }));
    assert!(answer.payload.is_none());

    let answer = client.request("frobnicate").unwrap();
    assert!(matches!(answer.reply, Reply::Err { code: 400, .. }));

    // Refused locally, nothing sent: the connection stays in step.
    assert!(client.request("get a.txt").is_err());
    assert!(client.request("   ").is_err());
    assert!(client.request(&"x".repeat(5000)).is_err());
    assert_eq!(client.request("pwd").unwrap().reply, Reply::Ok("/".into()));
}
