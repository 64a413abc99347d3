//! External oracle: for every MRT file in tests/data/mrt (RIPE NCC RIS data shipped with
//! bgpdump's own test suite) and in this crate's tests/data (more bgpdump test files and a
//! synthetic file covering the remaining subtypes), our `bgpdump -m` rendering must equal
//! bgpdump's output, `FILE.bgpdump-m.gz`, line for line. This checks the MRT reader, the BGP codec
//! (attributes, AS4 merging, MP_REACH/UNREACH, ADD-PATH, extended messages) and the
//! formatter against an independent implementation.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use bgp_mrt::bgpdump::Formatter;

/// The shared RIS files of the workspace.
fn data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/mrt")).to_path_buf()
}

/// This crate's additional files.
fn crate_data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).to_path_buf()
}

/// The MRT files in `dir` that have an expectation beside them.
fn mrt_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".bgpdump-m.gz"))
        .filter(|p| expectation_path(p).exists())
        .collect();
    files.sort();
    files
}

fn expectation_path(mrt: &Path) -> PathBuf {
    let mut name = mrt.file_name().expect("file name").to_os_string();
    name.push(".bgpdump-m.gz");
    mrt.with_file_name(name)
}

fn expected_text(mrt: &Path) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(File::open(expectation_path(mrt)).expect("expectation"))
        .read_to_string(&mut text)
        .expect("expectation is gzip text");
    text
}

/// Our rendering of `mrt`, in process, plus every problem reported along the way.
fn rendered(mrt: &Path) -> (String, Vec<String>) {
    let mut formatter = Formatter::new();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for record in bgp_mrt::open(mrt).expect("open MRT file") {
        match record {
            Ok(record) => {
                if let Err(e) = formatter.format_record(&record, &mut out) {
                    problems.push(e.to_string());
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    (String::from_utf8(out).expect("output is UTF-8"), problems)
}

fn check(mrt: &Path) -> Result<usize, String> {
    let name = mrt
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected = expected_text(mrt);
    let (ours, problems) = rendered(mrt);
    let mut exp_lines = expected.lines();
    let mut our_lines = ours.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (exp_lines.next(), our_lines.next()) {
            (None, None) => break,
            (e, o) if e == o => {}
            (e, o) => {
                return Err(format!(
                    "{name}: first difference at line {n}\n  bgpdump: {}\n  ours:    {}\n  problems reported: {:?}",
                    e.unwrap_or("<end of output>"),
                    o.unwrap_or("<end of output>"),
                    problems.iter().take(5).collect::<Vec<_>>()
                ))
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{name}: output matches but problems were reported: {problems:?}"
        ));
    }
    Ok(n - 1)
}

fn check_all(files: &[PathBuf]) {
    let mut failures = Vec::new();
    for file in files {
        match check(file) {
            Ok(lines) => assert!(lines > 0, "{} produced no lines", file.display()),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shared_ris_file_renders_exactly_as_bgpdump_m() {
    let files = mrt_files(&data_dir());
    assert!(
        files.len() >= 9,
        "expected the bgpdump test files, found {files:?}"
    );
    check_all(&files);
}

#[test]
fn extra_bgpdump_and_synthetic_files_render_exactly_as_bgpdump_m() {
    let files = mrt_files(&crate_data_dir());
    assert!(
        files.len() >= 4,
        "expected this crate's test files, found {files:?}"
    );
    check_all(&files);
}

#[test]
fn full_table_dump_has_every_route() {
    // The 2002 RIS full table: one TABLE_DUMP record per route.
    let file = data_dir().join("bview.20020722.2337.gz");
    let records = bgp_mrt::open(&file)
        .expect("open")
        .filter(|r| r.is_ok())
        .count();
    assert_eq!(records, 115_521);
    assert_eq!(check(&file), Ok(115_521));
}
