//! `bgpctl mrt dump FILE` prints bgpdump -m output on stdout.

use std::io::Read;
use std::process::Command;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/mrt");

#[test]
fn mrt_dump_matches_bgpdump_on_an_update_file() {
    let file = format!("{DATA}/updates.20071015.1505.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_bgpctl"))
        .args(["mrt", "dump", &file])
        .output()
        .expect("run bgpctl");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = Vec::new();
    flate2::read::MultiGzDecoder::new(
        std::fs::File::open(format!("{file}.bgpdump-m.gz")).expect("expectation"),
    )
    .read_to_end(&mut expected)
    .expect("gzip");
    assert_eq!(out.stdout.len(), expected.len());
    assert!(out.stdout == expected, "output differs from bgpdump -m");
}

#[test]
fn mrt_dump_reports_a_missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_bgpctl"))
        .args(["mrt", "dump", "/nonexistent/file.mrt"])
        .output()
        .expect("run bgpctl");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.mrt"));
}

#[test]
fn mrt_dump_reports_a_truncated_file_and_keeps_what_it_read() {
    let dir = std::env::temp_dir().join(format!("bgpctl-mrt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A BGP4MP STATE_CHANGE, then half of another.
    let record: Vec<u8> = [
        &[0x3d, 0x3d, 0x3d, 0x3d, 0, 16, 0, 0, 0, 0, 0, 20][..],
        &[
            0, 1, 0, 2, 0, 0, 0, 1, 192, 0, 2, 1, 192, 0, 2, 2, 0, 6, 0, 1,
        ],
    ]
    .concat();
    let mut data = record.clone();
    data.extend_from_slice(&record[..20]);
    let path = dir.join("truncated.mrt");
    std::fs::write(&path, &data).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_bgpctl"))
        .args(["mrt", "dump"])
        .arg(&path)
        .output()
        .expect("run bgpctl");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "BGP4MP|1027423549|STATE|192.0.2.1|1|6|1\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated MRT record"));
}
