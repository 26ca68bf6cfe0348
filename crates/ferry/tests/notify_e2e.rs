//! systemd readiness (`Type=notify`) under every model: with
//! `NOTIFY_SOCKET` set, the server sends `READY=1` (with its pid) once its
//! listeners are bound and `STOPPING=1` when SIGTERM starts the drain, as
//! datagrams to that socket; a SIGHUP reload is framed by `RELOADING=1`
//! and `READY=1` (systemd's `Type=notify-reload`).

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use util::scratch;
use util::serve::*;

fn next_state(socket: &UnixDatagram) -> String {
    let mut buf = [0; 512];
    let n = socket.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_after_binding_reloading_at_sighup_and_stopping_at_sigterm_under_every_model() {
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    for model in MODELS {
        let path = dir.path().join(format!("notify-{model}.sock"));
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let env = vec![("NOTIFY_SOCKET".to_string(), path.to_str().unwrap().to_string())];
        let mut server = spawn_server(model, Svc::Http, &root, &[], Opts { env, ..Opts::default() });
        let ready = next_state(&socket);
        assert!(ready.starts_with("READY=1\n"), "{model}: {ready}");
        assert!(ready.contains(&format!("MAINPID={}\n", server.pid())), "{model}: {ready}");
        // Ready means serving.
        assert_eq!(download(Svc::Http, server.addr, "a.txt"), util::sha256(b"a"), "{model}");
        server.signal(rustix::process::Signal::HUP);
        let reloading = next_state(&socket);
        assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{model}: {reloading}");
        assert!(next_state(&socket).starts_with("READY=1"), "{model}: ready again after the reload");
        server.stop();
        let stopping = next_state(&socket);
        assert!(stopping.starts_with("STOPPING=1"), "{model}: {stopping}");
    }
}
