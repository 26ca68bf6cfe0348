//! Failures are reported with the address and path, and leave the
//! connection usable exactly when the protocol says so.

mod support;

use std::fs;
use std::io::Write;
use std::net::TcpListener;

use ferry_client::{Client, ClientError, GetOptions, NoProgress, PutOptions};
use support::{TestServer, fake_server, options, write_part};

#[test]
fn server_errors_carry_code_and_path_and_leave_no_part() {
    let server = TestServer::start(false);
    let local = tempfile::tempdir().unwrap();
    let mut client = server.client();

    let err = client.get(b"/missing.bin", &local.path().join("m"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert_eq!(err.server_code(), Some(404), "{err}");
    let message = err.to_string();
    assert!(message.contains("/missing.bin") && message.contains(&server.addr), "{message}");
    assert!(!local.path().join("m.part").exists(), "a refused download leaves no .part");

    let err = client.cd(b"nowhere").unwrap_err();
    assert!(matches!(&err, ClientError::Server { code: 404, message, .. } if message.contains("/nowhere")), "{err}");

    // Read-only server: uploads are refused with 403.
    let source = local.path().join("up.txt");
    fs::write(&source, b"data").unwrap();
    let err = client.put(&source, None, PutOptions::default(), &mut NoProgress).unwrap_err();
    assert_eq!(err.server_code(), Some(403), "{err}");
    assert_eq!(client.mkdir(b"d").unwrap_err().server_code(), Some(403));

    // A directory cannot be downloaded.
    fs::create_dir(server.path("dir")).unwrap();
    let err = client.get(b"dir", &local.path().join("d"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert_eq!(err.server_code(), Some(409), "{err}");

    // After all these ERR answers the connection is still in step.
    client.ping().unwrap();
    assert_eq!(client.pwd().unwrap(), "/");
}

#[test]
fn local_errors_name_the_local_path() {
    let server = TestServer::start(true);
    let mut client = server.client();
    let err = client.put("/no/such/file".as_ref(), None, PutOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::Local { action: "open", .. }), "{err}");
    assert!(err.to_string().contains("/no/such/file"), "{err}");

    fs::write(server.path("f"), b"x").unwrap();
    let err = client.get(b"f", "/no/such/dir/f".as_ref(), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir/f.part"), "{err}");
    client.ping().unwrap();
}

#[test]
fn refused_connection_names_the_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let err = Client::connect_with(&addr, &options()).unwrap_err();
    let ClientError::Connect { source, .. } = &err else { panic!("expected a connect error: {err}") };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(err.to_string(), format!("cannot connect to {addr}"));
    assert!(matches!(Client::connect("bad:port"), Err(ClientError::BadAddress { .. })));
}

#[test]
fn early_end_of_download_keeps_the_part_and_breaks_the_connection() {
    let (addr, server) = fake_server(|stream, _request| {
        // Announce 100 bytes, deliver 40, vanish.
        stream.write_all(b"OK 100 0 100\n").unwrap();
        stream.write_all(&[7u8; 40]).unwrap();
    });
    let local = tempfile::tempdir().unwrap();
    let target = local.path().join("cut.bin");
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.get(b"/cut.bin", &target, GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::ShortPayload { got: 40, expected: 100, .. }), "{err}");
    assert_eq!(server.join().unwrap(), "get /cut.bin 0\n");
    assert_eq!(fs::read(local.path().join("cut.bin.part")).unwrap(), [7u8; 40]);
    assert!(!target.exists());
    // The stream is out of step: further requests are refused locally.
    assert!(matches!(client.ping(), Err(ClientError::Broken { .. })));
}

#[test]
fn an_endless_reply_line_is_a_protocol_error() {
    let (addr, server) = fake_server(|stream, _request| {
        let _ = stream.write_all(&vec![b'O'; 100 * 1024]);
    });
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.pwd().unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("longer than 64 KiB"), "{err}");
    server.join().unwrap();
}

/// Offset 0 for a resume is a restart only with a version (the server
/// saying the file changed); without one it is a broken answer.
#[test]
fn a_mismatched_resume_offset_is_a_protocol_error() {
    let (addr, server) = fake_server(|stream, _request| {
        stream.write_all(b"OK 10 0 10\n0123456789").unwrap();
    });
    let local = tempfile::tempdir().unwrap();
    write_part(&local.path().join("x.part"), b"01234", Some("v1"));
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let err = client.get(b"x", &local.path().join("x"), GetOptions::default(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, ClientError::Protocol { .. }), "{err}");
    assert_eq!(server.join().unwrap(), "get x 5 v1\n");
    assert_eq!(fs::read(local.path().join("x.part")).unwrap(), b"01234", "the part is untouched");
}
