//! `ferry serve` under socket activation: the listening sockets systemd
//! (or the ferry being upgraded) passed in take the place of the services'
//! addresses.
//!
//! A socket named `http`, `files` or `echo` (`FileDescriptorName=`) serves
//! that service; any other name (systemd's default is the socket unit's
//! name) serves the first enabled service in the order http, files, echo.
//! A service may get several sockets (IPv4 and IPv6, TCP and Unix). With
//! sockets passed, ferry listens on those only: a service that got none is
//! not served (and the log says so).

use anyhow::bail;
use ferry_server::ListenerConfig;
use ferry_server::listen_fds::PassedListener;

/// The services a socket can be named after, in the order an unnamed
/// socket picks the first enabled one.
const SERVICES: [&str; 3] = ["http", "files", "echo"];

/// The listeners to serve: one per passed socket, each a copy of its
/// service's settings at the socket's address (the socket is
/// [adopted](ferry_server::listen_fds::adopt), so binding that address
/// takes it). `configs` unchanged when nothing was passed.
pub(super) fn apply(passed: Vec<PassedListener>, configs: Vec<ListenerConfig>) -> anyhow::Result<Vec<ListenerConfig>> {
    if passed.is_empty() {
        return Ok(configs);
    }
    let enabled = |service: &str| configs.iter().any(|c| c.service.name() == service);
    let Some(default) = SERVICES.into_iter().find(|s| enabled(s)) else {
        bail!("socket activation: {} socket(s) passed but every stream service is off", passed.len());
    };
    let mut assigned: Vec<(&str, PassedListener)> = Vec::with_capacity(passed.len());
    for socket in passed {
        let service = match SERVICES.into_iter().find(|s| *s == socket.name) {
            Some(named) if !enabled(named) => bail!(
                "socket activation: a socket named {named:?} ({}) was passed, but the {named} service is off \
                 (give --{named} an address to turn it on; the socket is used instead of it)",
                socket.listener.local_addr()
            ),
            Some(named) => named,
            None => default,
        };
        assigned.push((service, socket));
    }
    let mut listeners = Vec::with_capacity(assigned.len());
    for config in configs {
        let service = config.service.name();
        let mut any = false;
        for (_, socket) in assigned.iter().filter(|(s, _)| *s == service) {
            let addr = socket.listener.local_addr().clone();
            tracing::info!("socket activation: {service} on {addr} (passed as {:?})", socket.name);
            listeners.push(ListenerConfig { addr, ..config.clone() });
            any = true;
        }
        if !any {
            tracing::info!("socket activation: no socket was passed for {service}; not serving it");
        }
    }
    for (_, socket) in assigned {
        ferry_server::listen_fds::adopt(socket.listener);
    }
    Ok(listeners)
}
