//! Directory listings with curl under every model: JSON by `?json` or by
//! `Accept: application/json` (`Vary: Accept`), sorting by the query, and
//! the HTML page's breadcrumbs and sort links.

mod http_util;
mod util;

use std::process::Command;

use http_util::{ALL_MODELS, HttpServer, PATIENCE, require_tool, run_bounded};
use util::scratch;

fn curl(args: &[&str]) -> String {
    let out = run_bounded(Command::new("curl").args(["-sS", "-i", "--fail"]).args(args), PATIENCE);
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn json_names(response: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(body(response)).expect("a JSON listing");
    value.as_array().expect("an array").iter().map(|e| e["name"].as_str().unwrap_or("?").to_string()).collect()
}

#[test]
fn json_sorting_and_breadcrumbs_under_every_model() {
    require_tool("curl", "curl");
    let dir = scratch();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub/deeper/inner")).unwrap();
    std::fs::write(root.join("sub/small.txt"), b"s").unwrap();
    std::fs::write(root.join("sub/big.txt"), vec![b'b'; 5000]).unwrap();
    std::fs::write(root.join("sub/mid.txt"), vec![b'm'; 300]).unwrap();
    for &model in ALL_MODELS {
        let m = model.name;
        let server = HttpServer::start(&root, model, &[]);
        let url = server.url("/sub/");

        let by_query = curl(&[&format!("{url}?json")]);
        assert!(by_query.to_ascii_lowercase().contains("content-type: application/json"), "{m}: {by_query}");
        assert_eq!(json_names(&by_query), ["deeper", "big.txt", "mid.txt", "small.txt"], "{m}");

        let by_accept = curl(&["-H", "Accept: application/json", &format!("{url}?sort=size&order=asc")]);
        assert!(by_accept.to_ascii_lowercase().contains("vary: accept"), "{m}: {by_accept}");
        assert_eq!(json_names(&by_accept), ["deeper", "small.txt", "mid.txt", "big.txt"], "{m}: by size");

        let page = curl(&[&server.url("/sub/deeper/?sort=size&order=desc")]);
        assert!(page.contains("text/html"), "{m}");
        let html = body(&page);
        assert!(html.contains("<a href=\"../../\">/</a><a href=\"../\">sub</a>/deeper/"), "{m}: breadcrumbs: {html}");
        assert!(html.contains("<a href=\"?sort=size&amp;order=asc\">Size \u{2193}</a>"), "{m}: {html}");
        assert!(html.contains("prefers-color-scheme:dark"), "{m}: dark mode");

        // A search of the tree from the top: matches anywhere below, linked
        // by their path, as JSON too.
        let found = curl(&[&server.url("/?q=TXT&json")]);
        let mut names = json_names(&found);
        names.sort();
        assert_eq!(names, ["sub/big.txt", "sub/mid.txt", "sub/small.txt"], "{m}");
        let page = curl(&[&server.url("/?q=inner")]);
        assert!(body(&page).contains("<a href=\"sub/deeper/inner/\">"), "{m}: {page}");
        assert!(body(&page).contains("1 found"), "{m}");
        let linked = curl(&[&server.url("/sub/deeper/inner/")]);
        assert!(linked.starts_with("HTTP/1.1 200"), "{m}: the match's link answers");
    }
}
