//! The listing page's controls for clients who may write in the folder:
//! upload (file picker or drag and drop, several files, a progress bar;
//! each file is a `PUT` by `XMLHttpRequest`, the same request curl makes),
//! a new folder (`MKCOL`) and a delete button per entry (`DELETE`). Without
//! JavaScript the upload form is a plain `multipart/form-data` `POST` to
//! the folder (`upload/form.rs`); new folder and delete need JavaScript. A
//! page for a client without write rights has none of them.

/// The controls, placed above the table.
const CONTROLS: &str = r#"<section id="ferry-write" aria-label="Change this folder">
<form id="ferry-upload" method="post" enctype="multipart/form-data"><label>Upload files: <input type="file" id="ferry-files" name="file" multiple></label> <button>Upload</button></form>
<div id="ferry-drop" tabindex="0">or drop files here</div>
<form id="ferry-mkdir"><input id="ferry-dirname" aria-label="New folder name" placeholder="New folder" required> <button>Create folder</button></form>
<progress id="ferry-progress" max="1" value="0" hidden></progress> <span id="ferry-status" role="status"></span>
</section>
"#;

/// What makes them work: relative URLs, so they act on this folder.
const SCRIPT: &str = r#"<script>
(function () {
  var status = document.getElementById('ferry-status'), bar = document.getElementById('ferry-progress');
  function say(text) { status.textContent = text; }
  function send(method, url, body, progress) {
    return new Promise(function (done, fail) {
      var x = new XMLHttpRequest();
      x.open(method, url);
      if (progress && x.upload) x.upload.onprogress = function (e) { if (e.lengthComputable) progress(e.loaded, e.total); };
      x.onload = function () { x.status < 300 ? done(x) : fail(new Error(method + ' ' + decodeURIComponent(url) + ': ' + x.status + ' ' + x.statusText)); };
      x.onerror = function () { fail(new Error(method + ' ' + decodeURIComponent(url) + ': connection failed')); };
      x.send(body);
    });
  }
  function upload(files) {
    files = Array.prototype.slice.call(files);
    if (!files.length) return;
    var total = files.reduce(function (n, f) { return n + f.size; }, 0) || 1, before = 0;
    bar.hidden = false;
    files.reduce(function (chain, f) {
      return chain.then(function () {
        say('Uploading ' + f.name + ' ...');
        return send('PUT', encodeURIComponent(f.name), f, function (sent) { bar.value = (before + sent) / total; })
          .then(function () { before += f.size; });
      });
    }, Promise.resolve()).then(function () { say('Uploaded ' + files.length + ' file(s).'); location.reload(); },
                                function (e) { say(e.message); });
  }
  var picker = document.getElementById('ferry-files');
  picker.onchange = function () { upload(picker.files); };
  document.getElementById('ferry-upload').onsubmit = function (e) { e.preventDefault(); upload(picker.files); };
  var drop = document.getElementById('ferry-drop');
  drop.ondragover = function (e) { e.preventDefault(); drop.className = 'over'; };
  drop.ondragleave = function () { drop.className = ''; };
  drop.ondrop = function (e) { e.preventDefault(); drop.className = ''; upload(e.dataTransfer.files); };
  document.getElementById('ferry-mkdir').onsubmit = function (e) {
    e.preventDefault();
    var name = document.getElementById('ferry-dirname').value;
    send('MKCOL', encodeURIComponent(name) + '/').then(function () { location.reload(); }, function (e) { say(e.message); });
  };
  document.querySelectorAll('tbody tr').forEach(function (row) {
    var link = row.querySelector('a');
    if (!link || link.getAttribute('href') === '../') return;
    var button = document.createElement('button');
    button.textContent = 'Delete';
    button.setAttribute('aria-label', 'Delete ' + link.textContent);
    button.onclick = function () {
      if (!confirm('Delete ' + link.textContent + '?')) return;
      send('DELETE', link.getAttribute('href')).then(function () { row.remove(); }, function (e) { say(e.message); });
    };
    var cell = document.createElement('td');
    cell.appendChild(button);
    row.appendChild(cell);
  });
})();
</script>
"#;

/// Extra style for the controls.
pub(super) const STYLE: &str = "#ferry-write{margin:1em 0}#ferry-drop{border:2px dashed #aaa;padding:1em;margin:.5em 0;text-align:center}\
#ferry-drop.over{border-color:#0645ad}#ferry-write form{margin:.5em 0}#ferry-progress{width:20em;max-width:100%}";

/// Appends the controls (before the table).
pub(super) fn push_controls(html: &mut Vec<u8>) {
    html.extend_from_slice(b"<style>");
    html.extend_from_slice(STYLE.as_bytes());
    html.extend_from_slice(b"</style>\n");
    html.extend_from_slice(CONTROLS.as_bytes());
}

/// Appends the script (after the table, whose rows it gives buttons).
pub(super) fn push_script(html: &mut Vec<u8>) {
    html.extend_from_slice(SCRIPT.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::super::{View, html};
    use crate::root::VirtualPath;

    #[test]
    fn only_a_writable_listing_has_the_controls() {
        let dir = VirtualPath::root();
        let read_only = String::from_utf8(html::render(&dir, &[], &View::default(), true)).unwrap();
        assert!(!read_only.contains("ferry-write") && !read_only.contains("<script"), "{read_only}");
        let writable = View { writable: true, ..View::default() };
        let page = String::from_utf8(html::render(&dir, &[], &writable, true)).unwrap();
        for needle in [
            "method=\"post\" enctype=\"multipart/form-data\"",
            "name=\"file\" multiple",
            "ferry-drop",
            "'PUT'",
            "'MKCOL'",
            "'DELETE'",
            "upload.onprogress",
        ] {
            assert!(page.contains(needle), "{needle}");
        }
        assert!(page.find("ferry-write") < page.find("<table>") && page.find("<script") > page.find("</table>"));
    }
}
