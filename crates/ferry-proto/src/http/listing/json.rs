//! A listing as JSON: an array of `{"name", "type", "size", "mtime"}`
//! (`mtime` in Unix seconds), the same fields as `ferry ls --json`. A name
//! that is not UTF-8 is given escaped as the file protocol escapes it,
//! with `"escaped": true`.

use std::os::unix::ffi::OsStrExt;

use super::Row;
use crate::files::escape::escape_text;
use crate::root::Kind;

/// The rows as a JSON array.
pub(crate) fn render(rows: &[Row]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let kind = if row.meta.kind == Kind::Dir { "dir" } else { "file" };
            let mut item = serde_json::json!({ "type": kind, "size": row.meta.size, "mtime": row.meta.mtime });
            match row.name.to_str() {
                Some(name) => item["name"] = name.into(),
                None => {
                    item["name"] = escape_text(row.name.as_bytes()).into();
                    item["escaped"] = true.into();
                }
            }
            item
        })
        .collect();
    let mut out = serde_json::Value::Array(items).to_string().into_bytes();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;
    use crate::root::Meta;

    #[test]
    fn names_are_exact_or_escaped() {
        let meta = Meta { kind: Kind::File, size: 3, mtime: 7, mtime_nsec: 0, ino: 1 };
        let rows = [
            Row { name: "a \"b\".txt".into(), meta },
            Row { name: OsStr::from_bytes(b"x\xff").to_os_string(), meta: Meta { kind: Kind::Dir, ..meta } },
        ];
        let value: serde_json::Value = serde_json::from_slice(&render(&rows)).expect("valid JSON");
        assert_eq!(value[0]["name"], "a \"b\".txt");
        assert_eq!((value[0]["size"].as_u64(), value[0]["mtime"].as_i64()), (Some(3), Some(7)));
        assert_eq!((value[1]["name"].as_str(), value[1]["type"].as_str()), (Some("x\\xff"), Some("dir")));
        assert_eq!(value[1]["escaped"], true);
    }
}
