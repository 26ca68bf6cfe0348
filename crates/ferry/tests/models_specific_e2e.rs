//! End-to-end tests of what only some concurrency models of `ferry serve`
//! have: multi-reactor's least-loaded assignment, iterative serialising
//! its clients, the prefork pool (queueing, surviving a killed worker and
//! carrying the client's address to it, dying with its parent, backing
//! off), fork's connection limit, daemon mode, and the iterative model
//! refusing clients once its drain began (checked under every model, which
//! must all behave alike there).

mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use util::serve::*;
use util::*;

/// `--assign least-loaded` is the multi-reactor model's other way of
/// picking a sub-loop: it says so at start and serves concurrent clients
/// of both services the same bytes.
#[test]
fn multi_reactor_assigns_least_loaded_when_asked() {
    let dir = scratch();
    let (root, small, _) = serve_tree(dir.path());
    for svc in [Svc::Files, Svc::Http] {
        let mut server = start_logged("multi-reactor", svc, &root, &["--io-threads", "2", "--assign", "least-loaded"]);
        let line = server.log_line("I/O loop(s)");
        assert!(line.contains("2 I/O loop(s)") && line.contains("LeastLoaded"), "{line}");
        let addr = server.addr;
        let handles: Vec<_> = (0..CLIENTS).map(|_| thread::spawn(move || download(svc, addr, "small.bin"))).collect();
        for handle in handles {
            assert_eq!(handle.join().expect("client"), small, "{svc:?}: bytes differ");
        }
        server.stop();
    }
}

#[test]
fn iterative_serves_one_client_at_a_time() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("iterative", Svc::Files, &root, &[]);
    let mut first = connect(server.addr);
    assert_eq!(ask(&mut first, "ping"), "OK pong");
    let mut second = connect(server.addr);
    second.write_all(b"ping\n").unwrap();
    assert!(silent_for(&mut second, Duration::from_millis(400)), "iterative answered a second client concurrently");
    assert_eq!(ask(&mut first, "quit"), "OK bye");
    assert_eq!(ask(&mut second, "ping"), "OK pong", "the second client is served once the first leaves");
    // ("OK pong" twice: the queued ping, then this one.)
    server.stop();
}

#[test]
fn prefork_queues_connections_while_every_worker_is_busy() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("prefork", Svc::Files, &root, &["--workers", "2"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut waiting: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for w in &mut waiting {
        w.write_all(b"ping\n").unwrap();
        assert!(silent_for(w, Duration::from_millis(300)), "served while both workers were busy");
    }
    assert_eq!(ask(&mut a, "quit"), "OK bye");
    assert_eq!(ask(&mut b, "quit"), "OK bye");
    for w in &mut waiting {
        assert_eq!(read_line(w), "OK pong", "a queued connection is served, not dropped");
        assert_eq!(ask(w, "quit"), "OK bye");
    }
    server.stop();
}

#[test]
fn prefork_replaces_a_killed_worker_and_only_its_connection_fails() {
    let dir = scratch();
    let (root, small, big) = serve_tree(dir.path());
    let mut server = start_logged("prefork", Svc::Files, &root, &["--workers", "3"]);
    let pid = server.pid();
    eventually("3 workers started", || descendants(pid).len() == 3);

    // Three transfers stalled mid-file keep all three workers busy.
    let mut transfers: Vec<_> = (0..3)
        .map(|_| {
            let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
            let mut first = vec![0; 64 * 1024];
            reader.read_exact(&mut first).expect("first bytes");
            (reader, len, first)
        })
        .collect();

    // Each worker's log names its client's address, passed with the fd.
    let ports: Vec<u16> = transfers.iter().map(|(r, _, _)| r.get_ref().local_addr().unwrap().port()).collect();
    let mut workers = vec![0; ports.len()];
    while workers.contains(&0) {
        let line = server.log_line("client 127.0.0.1:");
        let worker: i32 = line
            .split("worker ")
            .nth(1)
            .and_then(|w| w.split(':').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no worker pid in {line:?}"));
        if let Some(i) = ports.iter().position(|p| line.ends_with(&format!("client 127.0.0.1:{p}"))) {
            workers[i] = worker;
        }
    }
    let distinct: HashSet<i32> = workers.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "three workers serve the three clients: {workers:?}");
    assert!(distinct.is_subset(&descendants(pid)), "the logged workers are the server's children");
    let worker = workers[1];

    rustix::process::kill_process(rustix::process::Pid::from_raw(worker).unwrap(), rustix::process::Signal::KILL)
        .expect("kill the worker");
    eventually("the pool is back to 3 workers", || {
        let now = descendants(pid);
        now.len() == 3 && !now.contains(&worker) && now.iter().all(|&p| state(p) != Some('Z'))
    });

    for (i, (reader, len, first)) in transfers.iter_mut().enumerate() {
        if i == 1 {
            // EOF or a reset, at once: the worker holding it is gone.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            assert!(first.len() + rest.len() < *len, "the killed worker's transfer cannot have completed");
        } else {
            let mut rest = vec![0; *len - first.len()];
            reader.read_exact(&mut rest).expect("the rest of a transfer on a surviving worker");
            first.extend_from_slice(&rest);
            assert_eq!(sha256(first), big, "transfer {i} on a surviving worker is intact");
        }
    }
    // Later clients are served, by the replacement too.
    let addr = server.addr;
    let handles: Vec<_> = (0..9).map(|_| thread::spawn(move || download(Svc::Files, addr, "small.bin"))).collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), small);
    }
    let seen = descendants(pid);
    server.stop();
    assert_no_leftovers(pid, &seen);
}

#[test]
fn prefork_workers_die_with_a_killed_parent() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    let mut server = start("prefork", Svc::Files, &root, &["--workers", "3"]);
    let pid = server.pid();
    eventually("3 workers started", || descendants(pid).len() == 3);
    let workers = descendants(pid);
    // One worker is busy with a stalled transfer: only the death signal,
    // not EOF on its socketpair, can end it now.
    let (mut stalled, _) = request(Svc::Files, server.addr, "big.bin");
    let mut first = vec![0; 64 * 1024];
    stalled.read_exact(&mut first).expect("first bytes");
    server.signal(rustix::process::Signal::KILL);
    wait_child(&mut server.child, PATIENCE).expect("the parent died");
    for worker in workers {
        assert!(wait_gone(worker, PATIENCE), "worker {worker} outlived its parent (PR_SET_PDEATHSIG)");
    }
}

/// Waits (bounded) for a process that is not our child to exit, through a
/// pidfd. True if it exited.
fn wait_gone(pid: i32, within: Duration) -> bool {
    let Ok(pidfd) =
        rustix::process::pidfd_open(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::PidfdFlags::empty())
    else {
        return true; // already gone
    };
    let ts = rustix::event::Timespec::try_from(within).unwrap();
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    rustix::event::poll(&mut fds, Some(&ts)).expect("poll pidfd") == 1
}

/// Kills a process that is not our child when the test ends, however it
/// ends (a failing assertion must not leave a daemon behind).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn daemon_writes_its_pid_file_serves_and_cleans_up_on_sigterm() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let pid_file = dir.path().join("ferry.pid");
    let log_file = dir.path().join("ferry.log");
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("serve").arg(&root).args(["--files", "127.0.0.1:0", "--http", "off", "--model", "prefork"]);
    cmd.args(["--workers", "2", "--daemon", "--pid-file"]).arg(&pid_file).arg("--log-file").arg(&log_file);
    // A descriptor the launcher inherits beyond stdio, as from a shell: the
    // daemon must not keep it open.
    let (extra_read, extra_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let extra = extra_write.as_raw_fd();
    // SAFETY: the hook only clears close-on-exec on a descriptor this
    // process keeps open until after the spawn; fcntl is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(extra);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
        });
    }
    let mut launcher = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(extra_write);
    let mut out = String::new();
    launcher.stdout.take().unwrap().read_to_string(&mut out).expect("launcher stdout");
    let status = wait_child(&mut launcher, PATIENCE).expect("the launcher returns once the daemon is ready");
    assert!(status.success(), "ferry serve --daemon exited with {status}");
    let mut fds = [rustix::event::PollFd::new(&extra_read, rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec::try_from(PATIENCE).unwrap();
    let ready = rustix::event::poll(&mut fds, Some(&ts)).expect("poll");
    assert_eq!(ready, 1, "the daemon kept an inherited descriptor open");
    let mut byte = [0u8; 1];
    assert_eq!(
        rustix::io::read(&extra_read, &mut byte).ok(),
        Some(0),
        "EOF: the daemon closed the descriptor it inherited"
    );
    let addr: SocketAddr = out
        .trim()
        .strip_prefix("ferry: files listening on ")
        .expect("listening line before detaching")
        .parse()
        .unwrap();

    let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file written").trim().parse().unwrap();
    let reaper = KillOnDrop(pid);
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim(), "ferry");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_ne!(fields[3], pid.to_string(), "the daemon is not a session leader (it forked twice)");
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), Path::new("/"));

    let mut conn = connect(addr);
    assert_eq!(ask(&mut conn, "ping"), "OK pong");
    assert_eq!(ask(&mut conn, "quit"), "OK bye");

    // A second daemon with the same pid file refuses to start.
    let second = ferry(
        &[
            "serve",
            root.to_str().unwrap(),
            "--files",
            "127.0.0.1:0",
            "--http",
            "off",
            "--daemon",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        None,
        b"",
    );
    assert!(!second.status.success(), "a second daemon started");
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"), "{second:?}");

    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::TERM).unwrap();
    assert!(wait_gone(pid, PATIENCE), "the daemon exits on SIGTERM");
    std::mem::forget(reaper); // gone: its pid may be reused
    assert!(!pid_file.exists(), "the pid file is removed on exit");
    let log = std::fs::read_to_string(&log_file).expect("log file");
    assert!(log.contains("received SIGTERM"), "the log file has the daemon's log: {log}");
}

#[test]
fn fork_stops_accepting_at_max_conns_until_a_child_exits() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start("fork", Svc::Files, &root, &["--max-conns", "2"]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(ask(&mut a, "ping"), "OK pong");
    assert_eq!(ask(&mut b, "ping"), "OK pong");
    let mut c = connect(server.addr);
    c.write_all(b"ping\n").unwrap();
    assert!(silent_for(&mut c, Duration::from_millis(400)), "a third child was forked beyond --max-conns 2");
    assert_eq!(ask(&mut a, "quit"), "OK bye");
    assert_eq!(read_line(&mut c), "OK pong", "the waiting client is served once a child exits");
    assert_eq!(ask(&mut c, "quit"), "OK bye");
    assert_eq!(ask(&mut b, "quit"), "OK bye");
    server.stop();
}

#[test]
fn prefork_backs_off_replacing_workers_that_die_young() {
    let dir = scratch();
    let root = sample_tree(dir.path());
    let mut server = start_logged("prefork", Svc::Files, &root, &["--workers", "1"]);
    let pid = server.pid();
    let kill_the_worker = |server: &Running| {
        let mut worker = None;
        eventually("a live worker", || {
            worker = descendants(server.pid()).into_iter().find(|&p| state(p).is_some_and(|s| s != 'Z'));
            worker.is_some()
        });
        let worker = worker.unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_raw(worker).unwrap(), rustix::process::Signal::KILL)
            .expect("kill the worker");
        worker
    };
    // Two deaths in a row, each well within a second of the worker's start:
    // the replacement waits, and the wait doubles.
    let first = kill_the_worker(&server);
    let line = server.log_line(&format!("worker {first} "));
    assert!(line.contains("replacing it in 100ms"), "{line}");
    eventually("the replacement", || descendants(pid).iter().any(|&p| p != first));
    let second = kill_the_worker(&server);
    let line = server.log_line(&format!("worker {second} "));
    assert!(line.contains("replacing it in 200ms"), "{line}");
    // The pool comes back and serves.
    let mut conn = connect(server.addr);
    assert_eq!(ask(&mut conn, "ping"), "OK pong");
    assert_eq!(ask(&mut conn, "quit"), "OK bye");
    server.stop();
}

/// Pools start a connection's idle clock at accept, and no worker waits
/// for a silent client: silent clients wait for their first request in
/// the acceptor, where their session closes them with its idle-timeout
/// answer about one timeout after their accept, while a fresh `ping`
/// behind them is answered at once.
#[test]
fn pools_time_queued_connections_from_their_accept() {
    let dir = scratch();
    let (root, _, _) = serve_tree(dir.path());
    for model in ["threadpool", "prefork"] {
        let mut server = start(model, Svc::Files, &root, &["--workers", "2", "--idle-timeout", "1"]);
        // More than the workers; none says a word.
        let started = Instant::now();
        let mut silent: Vec<_> = (0..6).map(|_| connect(server.addr)).collect();
        let mut fresh = connect(server.addr);
        assert_eq!(ask(&mut fresh, "ping"), "OK pong", "{model}");
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(900), "{model}: a fresh ping waited {waited:?} behind silent clients");
        for s in &mut silent {
            assert_eq!(read_line(s), "ERR 408 idle timeout; closing", "{model}");
            let at = started.elapsed();
            assert!(
                at >= Duration::from_secs(1) && at < Duration::from_millis(2500),
                "{model}: timed out after {at:?}"
            );
        }
        server.stop();
    }
}

/// A client that connects once a graceful stop began is refused, or closed
/// at once, under every model, while a transfer begun before the stop is
/// still in flight: never accepted and left waiting for an answer that
/// will not come (the iterative model's serving thread is inside that
/// transfer, so its listener used to stay open until the drain ended).
#[test]
fn every_model_refuses_clients_that_come_during_the_drain() {
    let dir = scratch();
    let (root, _, big) = serve_tree(dir.path());
    for &model in MODELS {
        let mut server = start_logged(model, Svc::Files, &root, &["--workers", "2"]);
        // A client that read the first bytes and stopped: the drain waits
        // for it.
        let (mut reader, len) = request(Svc::Files, server.addr, "big.bin");
        let mut body = vec![0; 64 * 1024];
        reader.read_exact(&mut body).expect("first bytes");
        server.signal(rustix::process::Signal::TERM);
        server.log_line("shutting down");
        let started = Instant::now();
        let seen = late_client(server.addr);
        assert!(
            seen.is_ok(),
            "{model}: a client during the drain was {} after {:?}",
            seen.unwrap_err(),
            started.elapsed()
        );
        let mut rest = vec![0; len - body.len()];
        reader.read_exact(&mut rest).unwrap_or_else(|e| panic!("{model}: the transfer in flight was cut: {e}"));
        body.extend_from_slice(&rest);
        assert_eq!(sha256(&body), big, "{model}: bytes differ");
        drop(reader);
        let status = wait_child(&mut server.child, PATIENCE).expect("exited in time");
        assert!(status.success(), "{model}: exit status {status}");
    }
}

/// Connects and asks for `ping`: `Ok` with how it was turned away (refused,
/// reset, closed), `Err` if it was answered or left waiting.
fn late_client(addr: SocketAddr) -> Result<&'static str, String> {
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok("refused"),
        // The listener closed while the handshake was in its queue.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok("reset while connecting"),
        Err(e) => return Err(format!("connect failed oddly: {e}")),
    };
    stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let _ = stream.write_all(b"ping\n");
    let mut reply = [0u8; 64];
    match stream.read(&mut reply) {
        Ok(0) => Ok("closed"),
        Ok(n) => Err(format!("answered {:?}", String::from_utf8_lossy(&reply[..n]))),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
            Ok("reset")
        }
        Err(e) => Err(format!("left waiting ({e})")),
    }
}
