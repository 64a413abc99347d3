//! The side-by-side benchmark harness (`bench/`) stays usable without running a benchmark:
//! its scripts pass `shellcheck`, `bench/routes.sh` writes the route sets the source BIRD
//! loads, and `bench/report` turns a fixture results file (`bench/fixtures/results.jsonl`)
//! into the expected medians and ratios, rewrites only its own section of a document, and
//! refuses a malformed results file. No daemon is started: the benchmarks themselves are
//! not run in CI (minutes of a shared machine, and timing is not a test).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use interop::{prerequisites, require_binary};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &str, args: &[&str]) -> Output {
    let bin = require_binary(program).unwrap_or_else(|e| panic!("{program}: {e}"));
    Command::new(bin)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bench_scripts_pass_shellcheck() {
    if !prerequisites("bench_scripts_shellcheck", &["shellcheck"]) {
        return;
    }
    let out = run(
        "shellcheck",
        &[
            "-x",
            "-S",
            "warning",
            "bench/run.sh",
            "bench/lib.sh",
            "bench/routes.sh",
            "scripts/bench-e2e.sh",
        ],
    );
    assert!(out.status.success(), "shellcheck:\n{}", stdout(&out));
}

#[test]
fn routes_script_writes_bird_static_routes() {
    if !prerequisites("bench_routes", &["bash", "zcat", "awk"]) {
        return;
    }
    let out = run("bash", &["bench/routes.sh", "same", "3"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "route 10.128.0.0/32 blackhole;\nroute 10.128.0.1/32 blackhole;\nroute 10.128.0.2/32 blackhole;\n"
    );

    let out = run("bash", &["bench/routes.sh", "ris"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // Peer 193.203.0.1 of the 2002 table without its 160 AS_SET routes.
    assert_eq!(lines.len(), 112_826);
    assert_eq!(
        lines.first().copied(),
        Some(
            "route 3.0.0.0/8 blackhole { bgp_origin = ORIGIN_IGP; bgp_path.prepend(80); \
             bgp_path.prepend(1239); bgp_path.prepend(1853); };"
        )
    );
    assert!(lines
        .iter()
        .all(|l| l.starts_with("route ") && l.ends_with("};")));

    // Two copies: the second moves the first octet by 23 and prepends AS 64601.
    let out = run("bash", &["bench/routes.sh", "ris", "2"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.lines().count() > 200_000);
    assert!(text.contains(
        "route 26.0.0.0/8 blackhole { bgp_origin = ORIGIN_IGP; bgp_path.prepend(80); \
         bgp_path.prepend(1239); bgp_path.prepend(1853); bgp_path.prepend(64601); };"
    ));
}

fn fixture() -> String {
    root()
        .join("bench/fixtures/results.jsonl")
        .to_string_lossy()
        .into_owned()
}

fn row<'a>(table: &'a str, id: &str) -> &'a str {
    let needle = format!("(`{id}`)");
    table
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no row for {id} in:\n{table}"))
}

#[test]
fn report_takes_medians_and_ratios_of_any_workload() {
    if !prerequisites("bench_report", &["python3"]) {
        return;
    }
    let out = run(
        "python3",
        &["bench/report", &fixture(), "--print", "--no-chart"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout(&out);
    // Three runs each: medians 0.20 / 0.05 / 14 (BIRD) and 0.15 / 0.05 / 30 (bgpd).
    assert_eq!(
        row(&table, "same-100k"),
        "| 100k routes, identical attributes (`same-100k`) | 0.20 s / 0.050 s / 14.0 MiB \
         | 0.15 s / 0.050 s / 30.0 MiB | 0.75x / 1.00x / 2.14x | 3 / 3 | 1.9-3.2 \
         | [`bench/run.sh --only same-100k`](../bench/run.sh) |"
    );
    // No time at rest; the command of the first run that names one.
    assert_eq!(
        row(&table, "calico-idle-20k"),
        "| Calico node at rest, 20k kernel routes (CPU per minute) (`calico-idle-20k`) \
         | - / 1.20 s / 8.5 MiB | - / 0.12 s / 42.5 MiB | - / 0.10x / 5.00x | 1 / 1 | - \
         | [`bench/run.sh --only calico-idle`](../bench/run.sh) |"
    );
    // An id the report does not know (the route reflector's), a median of two runs, a
    // figure bgpd's runs lack.
    assert_eq!(
        row(&table, "rr-100"),
        "| rr-100 (`rr-100`) | 4.00 s / 3.00 s / 100.0 MiB | 1.50 s / - / 60.0 MiB \
         | 0.38x / - / 0.60x | 1 / 2 | - | - |"
    );
    assert!(table.contains("2026-12-08 to 2026-12-09, on 2 cores, Test CPU, Linux 6.1"));
    // Rows in the order the workloads first appear.
    let order: Vec<usize> = ["same-100k", "calico-idle-20k", "rr-100"]
        .iter()
        .map(|id| table.find(&format!("(`{id}`)")).unwrap_or(usize::MAX))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn report_rewrites_only_its_section_and_refuses_bad_lines() {
    if !prerequisites("bench_report_doc", &["python3"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let doc = tmp.path().join("benchmarks.md");
    std::fs::write(
        &doc,
        "# Benchmarks\n\nHand-written text.\n\n## MRT\n\nMore.\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let doc_arg = doc.to_string_lossy().into_owned();
    let fixture = fixture();
    let args = ["bench/report", &fixture, "--doc", &doc_arg, "--no-chart"];
    assert!(run("python3", &args).status.success());
    let first = std::fs::read_to_string(&doc).unwrap_or_default();
    assert!(first.starts_with("# Benchmarks\n\n<!-- bench/report: begin"));
    assert!(
        first.ends_with("<!-- bench/report: end -->\n\nHand-written text.\n\n## MRT\n\nMore.\n")
    );
    assert!(first.contains("(`same-100k`)"));
    // A second pass replaces the section instead of adding another.
    assert!(run("python3", &args).status.success());
    let second = std::fs::read_to_string(&doc).unwrap_or_default();
    assert_eq!(first, second);

    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"workload\": \"x\", \"daemon\": \"bird\", \"run\": 1, \"time_s\": 1, \"cpu_s\": 1, \"rss_mib\": 1, \"note\": \"\"}\n{\"workload\": \"x\", \"daemon\": \"frr\"}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        "python3",
        &[
            "bench/report",
            &bad.to_string_lossy(),
            "--print",
            "--no-chart",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.jsonl:2: daemon must be bird or bgpd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
