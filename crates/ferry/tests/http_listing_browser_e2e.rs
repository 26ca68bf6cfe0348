//! The listing page in headless Chromium at a desktop (1200 px) and a
//! phone (400 px) width: screenshots kept under target/ for people to look
//! at, and a measurement made in the page itself (a same-origin frame read
//! by script) that fails the test when the page is wider than the window
//! or a name's ordinary word is split across lines.
//!
//! One model: the page's bytes are the same under all of them (the
//! listing under every model is http_listing_e2e's and http_e2e's job).

mod http_util;
mod util;

use std::path::Path;
use std::process::Command;

use http_util::{ALL_MODELS, HttpServer, PATIENCE, require_tool, run_bounded};
use util::scratch;

/// Names as people have them: several words, accents, CJK, and one long
/// name without spaces (which may only break where nothing else fits).
const NAMES: &[&str] = &[
    "Annual report of the harbour commission for the year 2026 final version.pdf",
    "Überweisungsbestätigung Rechnung März.txt",
    "日本語のファイル名と長い説明.txt",
    "holiday photos from the northern islands.zip",
    "averyveryverylongfilenamewithoutanyspacesinitwhatsoever_0123456789.tar.gz",
];

/// The page that measures the listing: it frames `/` (same origin, so
/// script may read it) at the width its query names (`?400`: headless
/// Chromium lays a window out at least 500 px wide whatever
/// `--window-size` says) and writes what it found as JSON into `#result`,
/// which `--dump-dom` shows.
const MEASURE: &str = r#"<!DOCTYPE html><meta charset="utf-8">
<body style="margin:0"><pre id="result">pending</pre>
<iframe id="f" src="/" style="border:0;height:3000px;display:block"></iframe>
<script>
document.getElementById('f').style.width = location.search.slice(1) + 'px';
document.getElementById('f').onload = () => {
  const d = document.getElementById('f').contentDocument;
  const overflow = d.documentElement.scrollWidth - d.documentElement.clientWidth;
  const broken = [];
  let words = 0;
  for (const a of d.querySelectorAll('td:first-child a')) {
    const text = a.firstChild;
    if (!text || text.nodeType !== 3) continue;
    let at = 0;
    for (const word of text.data.split(' ')) {
      // Ordinary words: a word longer than a phone's line may break.
      if (word.length > 0 && word.length <= 24) {
        const r = d.createRange();
        r.setStart(text, at);
        r.setEnd(text, at + word.length);
        const lines = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
        words += 1;
        if (lines.size > 1) broken.push(word);
      }
      at += word.length + 1;
    }
  }
  const names = d.querySelectorAll('td:first-child a').length;
  document.getElementById('result').textContent =
    JSON.stringify({overflow, broken, words, names, width: d.documentElement.clientWidth});
};
</script>"#;

fn chromium(profile: &Path, width: u32) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--window-size={width},900"))
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn listing_fits_desktop_and_phone_widths_without_splitting_words() {
    require_tool("chromium", "chromium");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("a folder with a rather long name for a phone screen")).unwrap();
    for name in NAMES {
        std::fs::write(root.join(name), vec![b'x'; 12345]).unwrap();
    }
    std::fs::write(root.join("measure.html"), MEASURE).unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("listing-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let server = HttpServer::start(&root, ALL_MODELS[5], &[]);
    for width in [1200, 400] {
        let profile = dir.path().join(format!("profile-{width}"));
        let shot = shots.join(format!("listing-{width}.png"));
        let out = run_bounded(
            chromium(&profile, width).arg(format!("--screenshot={}", shot.display())).arg(server.url("/")),
            PATIENCE,
        );
        assert!(out.status.success(), "chromium --screenshot: {}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        // The PNG header's width is the window's.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), width, "screenshot width");

        let out = run_bounded(
            chromium(&profile, width).arg("--dump-dom").arg(server.url(&format!("/measure.html?{width}"))),
            PATIENCE,
        );
        assert!(out.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&out.stderr));
        let dom = String::from_utf8_lossy(&out.stdout);
        let json = dom
            .split_once("<pre id=\"result\">")
            .and_then(|(_, rest)| rest.split_once("</pre>"))
            .map(|(json, _)| json.replace("&quot;", "\"").replace("&amp;", "&"))
            .unwrap_or_else(|| panic!("{width}px: no result in the DOM:\n{dom}"));
        let found: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{width}px: {e}: {json}"));
        assert!(found["names"].as_u64() >= Some(NAMES.len() as u64 + 1), "{width}px: the names are listed: {found}");
        assert!(found["words"].as_u64() > Some(20), "{width}px: words were measured: {found}");
        assert!(
            found["width"].as_u64() <= Some(u64::from(width)),
            "{width}px: measured at the window's width: {found}"
        );
        assert_eq!(found["overflow"], 0, "{width}px: the page is wider than the window: {found}");
        assert_eq!(found["broken"], serde_json::json!([]), "{width}px: words split across lines: {found}");
    }
}
