//! What only the uring model has: when the kernel refuses io_uring
//! (simulated with a seccomp filter that makes `io_uring_setup` fail with
//! EPERM, as container runtimes' default profiles do), `--model uring`
//! exits at once with a message that says why and what to do, before it
//! announces any listener; the default model is unaffected.

mod util;

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use util::{PATIENCE, ferry_bin, wait_child};

/// `struct sock_filter` of the classic BPF seccomp uses.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// "io_uring_setup fails with EPERM; everything else is allowed." The
/// syscall number (offset 0 of `seccomp_data`) is 425 on every
/// architecture with the unified syscall table.
static DENY_IO_URING: [SockFilter; 4] = [
    SockFilter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 },
    SockFilter { code: BPF_JEQ_K, jt: 0, jf: 1, k: libc::SYS_io_uring_setup as u32 },
    SockFilter { code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ERRNO | libc::EPERM as u32 },
    SockFilter { code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW },
];

/// `ferry serve` on an empty root with `args`, under the filter; returns
/// (exit status success, stdout, stderr), or kills it once it announced a
/// listener (it started serving).
fn serve_without_io_uring(model: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(ferry_bin());
    cmd.arg("serve")
        .arg(dir.path())
        .args(["--model", model, "--files", "127.0.0.1:0", "--http", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes
    // two prctl calls on static data: no allocation, no lock.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let prog = SockFprog { len: DENY_IO_URING.len() as u16, filter: DENY_IO_URING.as_ptr() };
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const SockFprog, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ferry serve");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap_or(0);
    let mut out = String::from_utf8_lossy(&first[..n]).into_owned();
    if out.contains("listening on") {
        let _ = child.kill();
    }
    let status = wait_child(&mut child, PATIENCE).expect("ferry serve exited in time");
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    out.push_str(&rest);
    let mut err = String::new();
    let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
    (status.success(), out, err)
}

#[test]
fn a_refused_io_uring_makes_uring_exit_with_a_clear_message_and_leaves_the_default_alone() {
    let (ok, out, err) = serve_without_io_uring("uring");
    assert!(!ok, "ferry serve --model uring must fail without io_uring; stderr: {err}");
    assert!(!out.contains("listening on"), "it announced a listener it cannot serve: {out:?}");
    for needle in ["io_uring", "kernel.io_uring_disabled", "seccomp", "another --model", "Operation not permitted"] {
        assert!(err.contains(needle), "the error should mention {needle:?}: {err}");
    }
    let (_, out, err) = serve_without_io_uring("multi-reactor");
    assert!(out.contains("files listening on"), "the default model serves without io_uring: {out:?} {err}");
}

/// `ferry serve --model MODEL --io-threads RINGS` with HTTP only, under
/// `RLIMIT_NOFILE` = `nofile`; returns the child and its address.
fn serve_with_nofile(
    model: &str,
    root: &std::path::Path,
    nofile: u64,
    rings: usize,
) -> (std::process::Child, std::net::SocketAddr) {
    let mut cmd = Command::new(ferry_bin());
    let rings = rings.to_string();
    cmd.arg("serve")
        .arg(root)
        .args(["--model", model, "--files", "off", "--http", "127.0.0.1:0", "--io-threads", &rings, "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let limit = rustix::process::Rlimit { current: Some(nofile), maximum: Some(nofile) };
    // SAFETY: runs in the forked child before exec and makes one raw
    // syscall (prlimit64): no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().expect("spawn ferry serve");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("listening line");
    let addr = line.trim().strip_prefix("ferry: http listening on ").expect("http line").parse().expect("addr");
    (child, addr)
}

/// Kills the server when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = wait_child(&mut self.0, PATIENCE);
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(") ").expect("stat format").1;
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn out_of_descriptors_uring_sheds_new_connections_without_spinning_and_recovers() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), b"hello").expect("write");
    let (child, addr) = serve_with_nofile("uring", dir.path(), 48, 1);
    let mut child = KillOnDrop(child);
    // Hold more connections than the server has descriptors for.
    let held: Vec<std::net::TcpStream> = (0..80).filter_map(|_| std::net::TcpStream::connect(addr).ok()).collect();
    assert!(held.len() >= 60, "the kernel's backlog takes the connections");
    // Some of them are accepted with the reserve descriptor and closed at
    // once (end of stream or reset), instead of hanging in the backlog.
    // Latest first: those came after the descriptors ran out.
    let shed = held
        .iter()
        .rev()
        .find(|s| {
            s.set_read_timeout(Some(std::time::Duration::from_millis(200))).expect("timeout");
            let mut b = [0u8; 1];
            match (&**s).read(&mut b) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            }
        })
        .is_some();
    assert!(shed, "no connection was shed: the rest hang in the backlog");
    // No spinning on the still-readable listener while out of descriptors.
    let before = cpu_ticks(child.0.id());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let spent = cpu_ticks(child.0.id()) - before;
    assert!(spent < 30, "the server used {spent} ticks in a second while out of descriptors");
    // Descriptors come back: the server answers again.
    drop(held);
    assert!(matches!(child.0.try_wait(), Ok(None)), "the server exited: {:?}", child.0.try_wait());
    let mut answered = false;
    for _ in 0..50 {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
        s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("request");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello") {
            answered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(answered, "the server serves again once descriptors are free");
}

/// With two rings, each sheds what its own listening socket queues while
/// the other accepts and sheds at the same moment: every one of a burst of
/// connections far beyond the descriptor limit is either served (it gets
/// its answer) or shed (closed by the server); none is left hanging in a
/// backlog. (Shedding with the process's reserve descriptor freed a slot
/// for a moment that the other ring's accept could take: the reserve was
/// then lost and the rest of the burst hung until a connection closed.)
#[test]
fn out_of_descriptors_two_rings_serve_or_shed_every_connection_of_a_burst() {
    use std::io::Write as _;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), b"hello").expect("write");
    let (child, addr) = serve_with_nofile("uring", dir.path(), 48, 2);
    let child = KillOnDrop(child);
    // Several rounds: the race was lost in about one round in four.
    let mut last = Vec::new();
    for round in 0..10 {
        drop(std::mem::take(&mut last));
        // From four threads at once, so both rings accept and shed while
        // connections keep arriving.
        let burst: Vec<std::net::TcpStream> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| (0..100).filter_map(|_| std::net::TcpStream::connect(addr).ok()).collect::<Vec<_>>())
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap_or_default()).collect::<Vec<_>>()
        });
        assert!(burst.len() >= 300, "the kernel's backlogs take the connections");
        for mut s in &burst {
            let _ = s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        // Served connections answer and stay open; shed ones end. A shed
        // waits for nothing, so 5 s is ample even on a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut served, mut shed, mut hanging) = (0, 0, 0);
        for s in &burst {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            s.set_read_timeout(Some(left)).expect("timeout");
            let mut b = [0u8; 64];
            match (&*s).read(&mut b) {
                Ok(0) => shed += 1,
                // Any answer: out of descriptors, opening the file may fail
                // (500); what matters is that the connection was served.
                Ok(_) if b.starts_with(b"HTTP/1.1 ") => served += 1,
                Ok(n) => panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&b[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => shed += 1,
                Err(_) => hanging += 1,
            }
        }
        assert!(hanging == 0, "round {round}: {hanging} connections hang in a backlog ({served} served, {shed} shed)");
        assert!(shed > 0 && served < 48, "round {round}: {served} served, {shed} shed");
        last = burst;
    }
    // Out of descriptors with every ring's backlog shed, nothing spins.
    let before = cpu_ticks(child.0.id());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(child.0.id()) - before;
    assert!(spent < 30, "the server used {spent} ticks in a second while out of descriptors");
    drop(last);
}
