//! Unit tests of the configuration parser and diff engine (compiled only under
//! `#[cfg(test)]`, from `config/mod.rs`).

use std::path::Path;

use bgp_control::DEFAULT_CONTROL_SOCKET;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    from_str(text, Path::new("test.toml"))
}

fn err_at(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(ConfigError::At {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a positioned error, got {other:?}"),
    }
}

const BASE: &str = r#"
[global]
asn = 64512
router_id = "10.0.0.1"
"#;

#[test]
fn minimal_config_has_defaults() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.global.asn, 64512);
    assert_eq!(c.global.listen.len(), 2);
    assert_eq!(c.global.listen[0].port(), 179);
    assert_eq!(
        c.global.control.socket.as_deref(),
        Some(Path::new(DEFAULT_CONTROL_SOCKET))
    );
    assert_eq!(c.global.control.mode, 0o660);
    assert!(c.peers.is_empty());
}

#[test]
fn peer_inherits_from_template_chain() {
    let text = format!(
        r#"{BASE}
[templates.base]
hold_time = 30
connect_retry = 2
graceful_restart = {{ restart_time = 60, max_restart_time = 5000 }}

[templates.mesh]
template = "base"
remote_as = 64512
passive = true
keepalive = 5

[peers.Mesh_10_0_0_2]
template = "mesh"
address = "10.0.0.2"
passive = false
"#
    );
    let c = parse(&text).unwrap();
    let p = &c.peers["Mesh_10_0_0_2"];
    assert_eq!(p.hold_time, 30);
    assert_eq!(p.keepalive, 5);
    assert_eq!(p.connect_retry, 2);
    assert_eq!(p.remote_as, 64512);
    assert!(!p.passive, "the peer's own value wins over the template");
    assert_eq!(p.graceful_restart.restart_time, 60);
    assert!(p.graceful_restart.enabled);
    // Caps on what the peer announces: held to the 12-bit field, defaults otherwise.
    assert_eq!(p.graceful_restart.max_restart_time, 4095);
    assert_eq!(
        p.graceful_restart.max_long_lived_stale_time,
        super::DEFAULT_MAX_LONG_LIVED_STALE_TIME
    );
    assert_eq!(p.families, vec![Family::IPV4_UNICAST]);
    assert!(p.is_ibgp(&c.global));
    assert_eq!(p.ttl(&c.global), 64);
}

#[test]
fn keepalive_defaults_to_a_third_of_hold() {
    let c = parse(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 65000\nhold_time = 9\n"
    ))
    .unwrap();
    assert_eq!(c.peers["a"].keepalive, 3);
    assert_eq!(c.peers["a"].ttl(&c.global), 1, "eBGP defaults to TTL 1");
}

#[test]
fn unknown_key_is_refused_with_position() {
    let (line, col, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\nhodl_time = 3\n"
    ));
    assert_eq!(line, 9);
    assert_eq!(col, 1);
    assert!(msg.contains("hodl_time"), "{msg}");
}

#[test]
fn bad_value_is_refused_with_position() {
    let (line, col, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.300\"\nremote_as = 1\n"
    ));
    assert_eq!((line, col), (7, 11));
    assert!(msg.contains("invalid IP address"), "{msg}");
}

#[test]
fn syntax_error_has_position() {
    let (line, _, _) = err_at("[global]\nasn = \n");
    assert_eq!(line, 2);
}

#[test]
fn missing_global_is_refused() {
    assert!(matches!(parse("[peers]\n"), Err(ConfigError::File { .. })));
}

#[test]
fn hold_time_rules() {
    let (line, _, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\nhold_time = 2\n"
    ));
    assert_eq!(line, 9);
    assert!(msg.contains("RFC 4271"), "{msg}");
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\nhold_time = 9\nkeepalive = 9\n"
    ));
    assert!(msg.contains("keepalive"), "{msg}");
    // Hold time 0 disables keepalives entirely and is valid.
    let c = parse(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\nhold_time = 0\n"
    ))
    .unwrap();
    assert_eq!(c.peers["a"].keepalive, 0);
}

#[test]
fn unknown_template_and_cycles() {
    let (line, col, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\ntemplate = \"nope\"\naddress = \"10.0.0.2\"\nremote_as = 1\n"
    ));
    assert_eq!((line, col), (7, 12));
    assert!(msg.contains("unknown template"), "{msg}");
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[templates.x]\ntemplate = \"y\"\n[templates.y]\ntemplate = \"x\"\n[peers.a]\ntemplate = \"x\"\naddress = \"10.0.0.2\"\nremote_as = 1\n"
    ));
    assert!(msg.contains("inherits from itself"), "{msg}");
}

#[test]
fn missing_address_or_as_points_at_peer() {
    let (line, _, msg) = err_at(&format!("{BASE}\n[peers.lonely]\nremote_as = 1\n"));
    assert_eq!(line, 6);
    assert!(msg.contains("no address"), "{msg}");
    let (_, _, msg) = err_at(&format!("{BASE}\n[peers.lonely]\naddress = \"10.0.0.9\"\n"));
    assert!(msg.contains("no remote_as"), "{msg}");
}

#[test]
fn duplicate_peer_address_is_refused() {
    let (line, _, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\n[peers.b]\naddress = \"10.0.0.2\"\nremote_as = 2\n"
    ));
    assert_eq!(line, 10);
    assert!(msg.contains("same address"), "{msg}");
    // The same address on another port is another neighbour (BIRD's protocols, Calico's
    // `_port_N` sessions).
    let c = parse(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\n[peers.b]\naddress = \"10.0.0.2\"\nport = 1790\nremote_as = 2\n"
    ))
    .unwrap();
    assert_eq!(c.peers.len(), 2);
}

#[test]
fn link_local_peer_with_scope() {
    let c = parse(&format!(
        "{BASE}\n[peers.ll]\naddress = \"fe80::1%eth0\"\nremote_as = 65001\n"
    ))
    .unwrap();
    let p = &c.peers["ll"];
    assert_eq!(p.address.scope.as_deref(), Some("eth0"));
    assert_eq!(p.families, vec![Family::IPV6_UNICAST]);
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[peers.ll]\naddress = \"fe80::1\"\nremote_as = 65001\n"
    ));
    assert!(msg.contains("interface scope"), "{msg}");
}

#[test]
fn rr_client_must_be_ibgp() {
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 65000\nroute_reflector_client = true\n"
    ));
    assert!(msg.contains("RFC 4456"), "{msg}");
}

#[test]
fn gtsm_min_ttl() {
    let c = parse(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 65000\nttl_security = true\n[peers.b]\naddress = \"10.0.0.3\"\nremote_as = 65000\nttl_security = true\nmultihop = 3\n"
    ))
    .unwrap();
    assert_eq!(c.peers["a"].min_ttl(), Some(255));
    assert_eq!(c.peers["a"].ttl(&c.global), 255);
    assert_eq!(c.peers["b"].min_ttl(), Some(253));
}

#[test]
fn source_address_family_must_match() {
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 65000\nsource_address = \"::1\"\n"
    ));
    assert!(msg.contains("source_address"), "{msg}");
}

#[test]
fn originate_entries() {
    let c = parse(&format!(
        "{BASE}\n[[originate]]\nprefix = \"10.244.1.0/26\"\ncommunities = [\"64512:100\", \"no-export\"]\nlarge_communities = [\"64512:1:2\"]\n[[originate]]\nprefix = \"10.96.0.0/12\"\nno_install = true\n"
    ))
    .unwrap();
    assert_eq!(c.originate.len(), 2);
    let r = &c.originate[&"10.244.1.0/26".parse().unwrap()];
    assert_eq!(
        r.communities,
        vec![Community::new(64512, 100), Community::NO_EXPORT]
    );
    assert_eq!(r.large_communities.len(), 1);
    assert!(c.originate[&"10.96.0.0/12".parse().unwrap()].no_install);

    let (line, _, msg) = err_at(&format!(
        "{BASE}\n[[originate]]\nprefix = \"10.244.1.1/26\"\n"
    ));
    assert_eq!(line, 7);
    assert!(msg.contains("host bits"), "{msg}");
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[[originate]]\nprefix = \"10.0.0.0/8\"\n[[originate]]\nprefix = \"10.0.0.0/8\"\n"
    ));
    assert!(msg.contains("twice"), "{msg}");
}

#[test]
fn originate_via_a_gateway_and_allow_local_as() {
    let c = parse(&format!(
        "{BASE}\n[[originate]]\nprefix = \"10.225.0.4/32\"\nnext_hop = \"10.224.0.1\"\n[peers.p]\naddress = \"10.0.0.2\"\nremote_as = 65001\nallow_local_as = 2\n"
    ))
    .unwrap();
    let r = &c.originate[&"10.225.0.4/32".parse().unwrap()];
    assert_eq!(r.next_hop, Some("10.224.0.1".parse().unwrap()));
    assert_eq!(c.peers["p"].allow_local_as, 2);
    assert_eq!(parse(BASE).unwrap().originate.len(), 0);
    let (_, _, msg) = err_at(&format!(
        "{BASE}\n[[originate]]\nprefix = \"10.225.0.4/32\"\nnext_hop = \"fd00::1\"\n"
    ));
    assert!(msg.contains("family"), "{msg}");
}

#[test]
fn listen_and_control() {
    let c = parse(
        "[global]\nasn = 1\nrouter_id = \"1.1.1.1\"\nlisten = [\"127.0.0.2\", \"[::1]:1790\"]\nlisten_port = 1179\n[global.control]\nsocket = \"/tmp/x.sock\"\nmode = \"0600\"\n",
    )
    .unwrap();
    assert_eq!(
        c.global.listen,
        vec![
            "127.0.0.2:1179".parse().unwrap(),
            "[::1]:1790".parse().unwrap()
        ]
    );
    assert_eq!(c.global.control.mode, 0o600);
    let (line, _, msg) =
        err_at("[global]\nasn = 1\nrouter_id = \"1.1.1.1\"\n[global.control]\nmode = \"rw\"\n");
    assert_eq!(line, 5);
    assert!(msg.contains("octal"), "{msg}");
    let c =
        parse("[global]\nasn = 1\nrouter_id = \"1.1.1.1\"\n[global.control]\nenabled = false\n")
            .unwrap();
    assert_eq!(c.global.control.socket, None);
}

#[test]
fn router_id_and_asn_checked() {
    let (_, _, msg) = err_at("[global]\nasn = 1\nrouter_id = \"0.0.0.0\"\n");
    assert!(msg.contains("router_id"), "{msg}");
    let (_, _, msg) = err_at("[global]\nasn = 0\nrouter_id = \"1.1.1.1\"\n");
    assert!(msg.contains("7607"), "{msg}");
}

#[test]
fn drop_in_directory_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("bgpd.toml");
    std::fs::write(
        &main,
        format!("{BASE}include_dir = \"peers.d\"\n[templates.mesh]\nremote_as = 64512\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("peers.d")).unwrap();
    std::fs::write(
        dir.path().join("peers.d/b.toml"),
        "[peers.Mesh_10_0_0_3]\ntemplate = \"mesh\"\naddress = \"10.0.0.3\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("peers.d/a.toml"),
        "[peers.Mesh_10_0_0_2]\ntemplate = \"mesh\"\naddress = \"10.0.0.2\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("peers.d/ignored.txt"), "garbage").unwrap();
    std::fs::write(dir.path().join("peers.d/.hidden.toml"), "garbage").unwrap();
    let c = load(&main).unwrap();
    assert_eq!(
        c.peers.keys().collect::<Vec<_>>(),
        vec!["Mesh_10_0_0_2", "Mesh_10_0_0_3"]
    );

    // An error in a drop-in names that file and line.
    std::fs::write(
        dir.path().join("peers.d/c.toml"),
        "[peers.x]\naddress = \"10.0.0.4\"\nremote_as = 1\nbogus = 1\n",
    )
    .unwrap();
    let e = load(&main).unwrap_err().to_string();
    assert!(e.contains("peers.d/c.toml:4:1"), "{e}");
    std::fs::remove_file(dir.path().join("peers.d/c.toml")).unwrap();

    // A duplicate across files is refused.
    std::fs::write(
        dir.path().join("peers.d/d.toml"),
        "[peers.Mesh_10_0_0_2]\naddress = \"10.0.0.9\"\nremote_as = 1\n",
    )
    .unwrap();
    let e = load(&main).unwrap_err().to_string();
    assert!(e.contains("defined twice"), "{e}");
    std::fs::remove_file(dir.path().join("peers.d/d.toml")).unwrap();

    // [global] in a drop-in is refused.
    std::fs::write(
        dir.path().join("peers.d/e.toml"),
        "[global]\nasn = 1\nrouter_id = \"1.1.1.1\"\n",
    )
    .unwrap();
    let e = load(&main).unwrap_err().to_string();
    assert!(
        e.contains("e.toml:1:1") && e.contains("main configuration"),
        "{e}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let e = load(Path::new("/nonexistent/bgpd.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().starts_with("/nonexistent/bgpd.toml: "));
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
    assert_eq!(line_col("ab\ncdé\nx", 3), (2, 1));
    assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
    assert_eq!(line_col("ab", 99), (1, 3));
}

#[test]
fn bird_sockets_are_off_by_default_and_parsed() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.global.control.bird, BirdSocketConfig::default());
    assert_eq!(c.global.control.bird.socket, None);
    let c = parse(&format!(
        "{BASE}[global.control]\nbird_socket = \"/var/run/calico/bird.ctl\"\nbird6_socket = \"/var/run/calico/bird6.ctl\"\nbird_format = \"bird2\"\n"
    ))
    .unwrap();
    let b = &c.global.control.bird;
    assert_eq!(
        b.socket.as_deref(),
        Some(Path::new("/var/run/calico/bird.ctl"))
    );
    assert_eq!(
        b.socket6.as_deref(),
        Some(Path::new("/var/run/calico/bird6.ctl"))
    );
    assert_eq!(b.format, BirdFormat::Bird2);
    // The JSON control socket keeps its default.
    assert_eq!(
        c.global.control.socket.as_deref(),
        Some(Path::new(DEFAULT_CONTROL_SOCKET))
    );
    let (line, _, msg) = err_at(&format!(
        "{BASE}[global.control]\nbird_format = \"bird3\"\n"
    ));
    assert_eq!(line, 6);
    assert!(msg.contains("bird3"), "{msg}");
}

#[test]
fn add_path_receive_limit_default_template_and_checks() {
    let text = format!(
        r#"{BASE}
[templates.rr]
add_path = "both"
add_path_receive_limit = 64

[peers.a]
template = "rr"
address = "10.0.0.2"
remote_as = 64512

[peers.b]
address = "10.0.0.3"
remote_as = 64512
"#
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.peers["a"].add_path_receive_limit, 64);
    assert_eq!(
        c.peers["b"].add_path_receive_limit,
        DEFAULT_ADD_PATH_RECEIVE_LIMIT
    );
    assert_eq!(DEFAULT_ADD_PATH_RECEIVE_LIMIT, 1024);
    // A change applies without restarting the session.
    let mut new = c.peers["a"].clone();
    new.add_path_receive_limit = 128;
    let d = diff::diff_peer(&c.peers["a"], &new, &Default::default());
    assert!(d.restart.is_empty());
    assert_eq!(d.runtime, vec!["add_path_receive_limit"]);
    let zero = format!(
        "{BASE}\n[peers.a]\naddress = \"10.0.0.2\"\nremote_as = 1\nadd_path_receive_limit = 0\n"
    );
    let (_, _, msg) = err_at(&zero);
    assert!(msg.contains("add_path_receive_limit"), "{msg}");
}

#[test]
fn control_access_and_limits() {
    let c = parse(BASE).unwrap();
    let ctl = &c.global.control;
    assert_eq!(
        (ctl.mode, ctl.bird.mode, ctl.group.as_deref()),
        (0o660, 0o660, None)
    );
    assert_eq!(ctl.limits, ControlLimits::default());
    let c = parse(&format!(
        "{BASE}[global.control]\nmode = \"0600\"\ngroup = \"calico\"\nbird_mode = \"0666\"\nmax_connections = 4\ntimeout = 5\n"
    ))
    .unwrap();
    let ctl = &c.global.control;
    assert_eq!(ctl.mode, 0o600);
    assert_eq!(ctl.bird.mode, 0o666, "the BIRD sockets have their own mode");
    assert_eq!(ctl.group.as_deref(), Some("calico"));
    assert_eq!(ctl.limits.max_connections, 4);
    assert_eq!(ctl.limits.idle, std::time::Duration::from_secs(5));
    assert_eq!(ctl.limits.write, std::time::Duration::from_secs(5));
    // The BIRD sockets follow `mode` unless given their own.
    let c = parse(&format!("{BASE}[global.control]\nmode = \"0640\"\n")).unwrap();
    assert_eq!(c.global.control.bird.mode, 0o640);
    for bad in [
        "max_connections = 0",
        "group = \"a:b\"",
        "bird_mode = \"999\"",
    ] {
        let (line, _, msg) = err_at(&format!("{BASE}[global.control]\n{bad}\n"));
        assert_eq!(line, 6, "{bad}: {msg}");
    }
}

#[test]
fn files_holding_passwords_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("bgpd.toml");
    std::fs::write(&main, format!("{BASE}include_dir = \"peers.d\"\n")).unwrap();
    std::fs::create_dir(dir.path().join("peers.d")).unwrap();
    let drop_in = dir.path().join("peers.d/p.toml");
    std::fs::write(
        &drop_in,
        "[peers.p]\naddress = \"10.0.0.2\"\nremote_as = 64512\npassword = \"s3cret\"\n",
    )
    .unwrap();
    let mode = |m: u32| {
        std::fs::set_permissions(&drop_in, std::fs::Permissions::from_mode(m)).unwrap();
    };
    // Writable by the group or everyone: refused, naming the file.
    for m in [0o664, 0o646, 0o620] {
        mode(m);
        let e = load(&main).unwrap_err().to_string();
        assert!(e.contains("peers.d/p.toml"), "{m:o}: {e}");
        assert!(e.contains("writable"), "{m:o}: {e}");
    }
    // Private, or readable by everyone (a warning only): loaded.
    for m in [0o600, 0o640, 0o644] {
        mode(m);
        assert!(load(&main).is_ok(), "{m:o}");
    }
    // Without a password the mode is not our business.
    std::fs::write(
        &drop_in,
        "[peers.p]\naddress = \"10.0.0.2\"\nremote_as = 64512\n",
    )
    .unwrap();
    mode(0o666);
    assert!(load(&main).is_ok());
}

#[test]
fn metrics_endpoint() {
    assert_eq!(parse(BASE).unwrap().global.metrics, None, "off by default");
    let c = parse(&format!(
        "{BASE}[global.metrics]\nlisten = \"127.0.0.1:9179\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.global.metrics.map(|m| m.listen),
        Some("127.0.0.1:9179".parse().unwrap())
    );
    let c = parse(&format!(
        "{BASE}[global.metrics]\nlisten = \"[::1]:9179\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.global.metrics.map(|m| m.listen),
        Some("[::1]:9179".parse().unwrap())
    );
    for bad in [
        "listen = \"127.0.0.1\"",
        "listen = \"localhost:9179\"",
        "port = 9179",
    ] {
        let (line, _, msg) = err_at(&format!("{BASE}[global.metrics]\n{bad}\n"));
        assert_eq!(line, 6, "{bad}: {msg}");
    }
    // A change is reported by the diff, so bgpd knows to move the endpoint.
    let old = parse(BASE).unwrap();
    let new = parse(&format!(
        "{BASE}[global.metrics]\nlisten = \"127.0.0.1:9179\"\n"
    ))
    .unwrap();
    let d = super::diff::diff(&old, &new);
    assert!(d.metrics_changed && !d.control_changed, "{d:?}");
}
