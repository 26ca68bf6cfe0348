//! `ferry serve`'s HTTP options: content codings (`--compress`,
//! `--precompressed`), `--cache-control` by type, and `--qr` (the HTTP
//! URL as a QR code in the terminal at start, so a phone can open it).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use ferry_proto::http::{CacheControl, Encoding, HttpConfig, Level};

/// HTTP options of `ferry serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Compress answers on the fly for clients that accept gzip, br or
    /// zstd (text, JSON, JavaScript, CSS, SVG, XML, wasm from 1 KiB; never
    /// ranges): off, fast (least CPU), on (gzip 6 / brotli 5 / zstd 3),
    /// best (smallest, several times the CPU).
    #[arg(long, value_name = "off|fast|on|best", default_value = "on", value_parser = parse_compress)]
    compress: Compress,
    /// Memory for compressed answers kept so a hot file is compressed
    /// once (per server; files up to 1 MiB): 16M, 0 for none.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = crate::units::parse_size)]
    compress_cache: u64,
    /// Serve x.js.zst, x.js.br or x.js.gz in place of x.js when a client
    /// takes that coding and the sibling is not older than x.js (as
    /// nginx's gzip_static): on, off.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    precompressed: bool,
    /// Cache-Control by media type (repeatable): TYPE=VALUE, where TYPE is
    /// text/html, a family as image/*, or *; the most specific wins, and
    /// VALUE off sends none. Default: *=no-cache (browsers revalidate,
    /// cheaply, with the ETag). Example: --cache-control
    /// 'image/*=max-age=86400' --cache-control 'text/html=no-cache'.
    #[arg(long = "cache-control", value_name = "TYPE=VALUE")]
    cache_control: Vec<String>,
    /// Print the HTTP URL as a QR code in the terminal at start (with
    /// --public, at this machine's first non-loopback address).
    #[arg(long)]
    qr: bool,
}

/// `--compress`'s value.
#[derive(Debug, Clone, Copy)]
struct Compress(Option<Level>);

fn parse_compress(text: &str) -> Result<Compress, String> {
    Ok(Compress(match text {
        "off" => None,
        "fast" => Some(Level::Fast),
        "on" => Some(Level::Default),
        "best" => Some(Level::Best),
        _ => return Err(format!("{text:?}: expected off, fast, on or best")),
    }))
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?}: expected on or off")),
    }
}

/// Whether the QR code is wanted, and the HTTP scheme: set when the
/// listeners are configured, read when they are announced.
static QR: OnceLock<&'static str> = OnceLock::new();

/// `config` with the HTTP options applied.
pub fn apply(args: &HttpArgs, config: HttpConfig) -> anyhow::Result<HttpConfig> {
    let cache_control = CacheControl::parse(&args.cache_control).context("--cache-control")?;
    let mut encoding = Encoding::new(args.compress.0, args.precompressed);
    encoding.cache_bytes = usize::try_from(args.compress_cache).unwrap_or(usize::MAX);
    let encoding = Arc::new(encoding);
    Ok(HttpConfig { encoding, cache_control, ..config })
}

/// Remembers that the QR code is to be printed, for a service that speaks
/// `scheme` (http or https).
pub fn want_qr(args: &HttpArgs, scheme: &'static str) {
    if args.qr {
        let _ = QR.set(scheme);
    }
}

/// The QR code block for the HTTP service bound at `addr` (as printed on
/// its listening line), if --qr was given and the address is TCP.
pub fn qr_block(addr: &str) -> Option<String> {
    let scheme = QR.get()?;
    let addr: SocketAddr = addr.parse().ok()?;
    let url = format!("{scheme}://{}/", reachable(addr));
    Some(render(&url))
}

/// The URL drawn with half-block characters, light modules dark so it
/// reads on a dark terminal (phones read both), then the URL itself.
fn render(url: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let art = code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build();
            format!("{art}\nferry: scan to open {url}\n")
        }
        Err(e) => format!("ferry: no QR code for {url}: {e}\n"),
    }
}

/// The address a phone should use for `bound`: itself, or for an
/// unspecified one (--public) this machine's first non-loopback address
/// of that family (IPv4 first for `[::]`), else `bound` as it is.
fn reachable(bound: SocketAddr) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let mut found: Vec<IpAddr> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifaddr in addrs {
            let Some(addr) = ifaddr.address else { continue };
            let ip = if let Some(v4) = addr.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            let link_local = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
            if !ip.is_loopback() && !ip.is_unspecified() && !link_local {
                found.push(ip);
            }
        }
    }
    let v4 = found.iter().find(|ip| ip.is_ipv4());
    let pick = if bound.is_ipv4() { v4 } else { v4.or(found.first()) };
    pick.map_or(bound, |&ip| SocketAddr::new(ip, bound.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_a_square_of_half_blocks_then_the_url() {
        let text = render("http://127.0.0.1:8080/");
        let lines: Vec<&str> = text.lines().collect();
        let last = lines.last().unwrap();
        assert_eq!(*last, "ferry: scan to open http://127.0.0.1:8080/");
        let art = &lines[..lines.len() - 1];
        let width = art[0].chars().count();
        assert!(art.iter().all(|l| l.chars().count() == width));
        // Two modules per character vertically: a square code is about
        // twice as wide as it is tall.
        assert!((art.len() * 2).abs_diff(width) <= 2, "{} lines of {width}", art.len());
        assert!(art.concat().chars().all(|c| " ▀▄█".contains(c)));
        assert_ne!(render("http://127.0.0.1:8081/"), text);
    }

    #[test]
    fn specific_addresses_stay() {
        let bound: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(reachable(bound), bound);
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let picked = reachable(any);
        assert_eq!(picked.port(), 8080);
        assert!(!picked.ip().is_loopback());
    }
}
