//! Planning multi-file transfers against servers that answer what they
//! like: a listing is data from the peer, and no name in it may lead a
//! download outside the directory it goes to (scp's CVE-2019-6111).

mod support;

use ferry_client::Client;
use support::{options, scripted_server};

#[test]
fn a_hostile_listing_cannot_lead_a_tree_download_elsewhere() {
    let (addr, server) = scripted_server(|peer| {
        assert_eq!(peer.line(), "stat /t");
        peer.send(b"OK d 4096 1700000000 /t\n");
        assert_eq!(peer.line(), "ls /t");
        let listing = b"f 1 1700000000 ..\nf 1 1700000000 ../evil\nd 1 1700000000 .\nf 3 1700000000 ok.txt\n";
        peer.send(format!("OK {}\n", listing.len()).as_bytes());
        peer.send(listing);
        // Nothing else is asked: the bad names are not followed.
        peer.line()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::connect_with(&addr, &options()).unwrap();
    let plan = client.plan_get(&[b"/t"], Some(dir.path()), true).unwrap();
    drop(client);
    assert_eq!(server.join().unwrap(), "", "no request after the listing");
    let files: Vec<_> = plan.files.iter().map(|f| (f.remote.clone(), f.local.clone())).collect();
    assert_eq!(files, [(b"/t/ok.txt".to_vec(), dir.path().join("t/ok.txt"))]);
    assert_eq!(plan.dirs.len(), 1);
    assert_eq!(plan.notes.len(), 3, "{:?}", plan.notes);
    assert!(plan.notes.iter().all(|n| n.contains("not a name that can be saved")), "{:?}", plan.notes);
}
