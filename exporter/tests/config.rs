//! The configuration as the real binary reads it: constant labels expanded from the environment
//! (check-config, serve and replay), relative paths resolved against the configuration's own
//! directory whatever the working directory, and errors that name the field and the path tried.

mod common;
use common::httpd::{Reply, Server};
use common::process::{poll_until, Sidecar};
use common::*;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

const LABELS: &str =
    "labels:\n  node: ${NODE_NAME}\n  region: ${REGION:-eu-central}\n  network: test$$net\n";

fn identity_config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("chainwatch.yaml");
    write(
        &p,
        &format!(
            "version: 1\nprofiles: [dilithion]\n{LABELS}sources:\n  - name: node-log\n    type: file\n    paths: [node.log]\n"
        ),
    );
    p
}

/// `chainwatch-exporter ARGS` with exactly these identity variables set (the others removed).
fn run(args: &[&str], config: &Path, env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(config).args(args).current_dir(cwd);
    for v in ["NODE_NAME", "REGION"] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run chainwatch-exporter")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn append(path: &Path, line: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
}

#[test]
fn check_config_expands_labels_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = identity_config(dir.path());
    // Set; the default; the `$$` escape.
    let out = run(
        &["check-config"],
        &cfg,
        &[("NODE_NAME", "dilithion-3")],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            r#"constant labels: {chain="dilithion", network="test$net", node="dilithion-3", region="eu-central"}"#
        ),
        "{}",
        text(&out.stdout)
    );
    // A set variable beats the default.
    let out = run(
        &["check-config"],
        &cfg,
        &[("NODE_NAME", "dilithion-3"), ("REGION", "us-east")],
        dir.path(),
    );
    assert!(
        text(&out.stdout).contains(r#"region="us-east""#),
        "{}",
        text(&out.stdout)
    );
    // Unset: the field's position and the variable's name, exit 2.
    let out = run(&["check-config"], &cfg, &[], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "chainwatch-exporter: {}:4:9: labels.node: environment variable NODE_NAME is not set",
            cfg.display()
        )
    );
    // Empty is refused as well: an empty node label would silently vanish.
    let out = run(&["check-config"], &cfg, &[("NODE_NAME", "")], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("labels.node: environment variable NODE_NAME is empty"),
        "{}",
        text(&out.stderr)
    );
    // A bare `$VAR` is an error, not a literal.
    write(
        &cfg,
        "version: 1\nprofiles: [dilithion]\nlabels: {node: $HOSTNAME}\nsources: [{type: file, name: f, paths: [x]}]\n",
    );
    let out = run(&["check-config"], &cfg, &[], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{}:3:16: labels.node: `$` starts", cfg.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_exports_the_expanded_labels_and_refuses_an_unset_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = identity_config(dir.path());
    let s = Sidecar::start_with(&cfg, &[], |c| {
        c.env_remove("REGION")
            .env("NODE_NAME", "dilithion-7")
            .current_dir(dir.path());
    });
    s.wait_ready();
    append(
        &dir.path().join("node.log"),
        "[INFO] BLOCK FOUND! height=5\n",
    );
    let m = poll_until("the block counted", || {
        let m = s.metrics();
        (value(&m, "chain_blocks_mined_total", &[]) == Some(1.0)).then_some(m)
    });
    for (series, _) in &m {
        let l = &series.labels;
        assert_eq!(
            (
                l.get("node").map(String::as_str),
                l.get("region").map(String::as_str),
                l.get("network").map(String::as_str)
            ),
            (Some("dilithion-7"), Some("eu-central"), Some("test$net")),
            "{series:?}"
        );
    }
    drop(s);
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&cfg)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .env_remove("NODE_NAME")
        .current_dir(dir.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!(
            "{}:4:9: labels.node: environment variable NODE_NAME is not set",
            cfg.display()
        )),
        "{}",
        text(&out.stderr)
    );
}

/// A configuration whose every path is relative, started from another directory (as systemd
/// starts services from `/`): the profile, the log glob, the cookie file and the state directory
/// are found beside the configuration.
#[test]
fn relative_paths_resolve_against_the_config_directory_not_the_working_directory() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("etc/chainwatch");
    let logs = root.path().join("var/log/mynode");
    let elsewhere = root.path().join("elsewhere");
    for d in [
        &conf.join("profiles"),
        &conf.join("secrets"),
        &logs,
        &elsewhere,
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    write(
        &conf.join("profiles/mynode.yaml"),
        "version: 1\nname: mynode\nchain: mychain\nrules:\n  - name: tip\n    regex: 'new tip (?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\napis:\n  rpc:\n    type: jsonrpc\n    calls:\n      - method: getconnectioncount\n        metrics:\n          - gauge: chain_peers\n            pointer: \"\"\n",
    );
    write(&conf.join("secrets/.cookie"), "__cookie__:pw\n");
    let srv = Server::start(|r| {
        let ok = r
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == "Basic X19jb29raWVfXzpwdw==");
        if ok {
            Reply::Ok(r#"{"result": 8, "error": null, "id": "chainwatch"}"#.into())
        } else {
            Reply::Status(401, String::new())
        }
    });
    let cfg = conf.join("chainwatch.yaml");
    write(
        &cfg,
        &format!(
            "version: 1\nprofiles: [profiles/mynode.yaml]\nlabels: {{node: n1}}\nstate_dir: state\nsources:\n  - name: log\n    type: file\n    paths: [\"../../var/log/mynode/*.log\"]\n  - name: rpc\n    type: jsonrpc\n    url: {}\n    interval: 200ms\n    timeout: 150ms\n    cookie_file: secrets/.cookie\n",
            srv.url()
        ),
    );
    let out = run(&["check-config"], &cfg, &[], &elsewhere);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let s = Sidecar::start_with(&cfg, &[], |c| {
        c.current_dir(&elsewhere);
    });
    s.wait_ready();
    append(&logs.join("node.log"), "new tip 77\n");
    poll_until("the log line and the RPC answer", || {
        let m = s.metrics();
        (value(&m, "chain_block_height", &[("chain", "mychain")]) == Some(77.0)
            && value(&m, "chain_peers", &[]) == Some(8.0))
        .then_some(())
    });
    let (code, _) = s.terminate();
    assert_eq!(code, 0);
    assert!(
        conf.join("state").is_dir(),
        "state_dir resolves beside the config"
    );
    assert!(!elsewhere.join("state").exists());
}

#[test]
fn an_unreadable_relative_path_names_the_field_and_the_full_path_tried() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let cfg = conf.join("chainwatch.yaml");
    write(
        &cfg,
        "version: 1\nprofiles: [dilithion, ../x.yaml]\nsources: [{type: file, name: f, paths: [x]}]\n",
    );
    let out = run(&["check-config"], &cfg, &[], Path::new("/"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2:23: profiles[1]: cannot read profile {}: No such file or directory",
            cfg.display(),
            conf.join("../x.yaml").display()
        )),
        "{err}"
    );
    // The web config's files resolve against the web config's directory, and say so in full.
    write(
        &cfg,
        "version: 1\nprofiles: [dilithion]\nsources: [{type: file, name: f, paths: [x]}]\n",
    );
    write(
        &conf.join("web.yml"),
        "tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n",
    );
    let out = Command::new(bin())
        .args(["--config", "conf/chainwatch.yaml"])
        .args(["--web.config.file", "conf/web.yml", "check-config"])
        .current_dir(root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "conf/web.yml:2:14: tls_server_config.cert_file: cannot read {}: No such file",
            conf.join("tls/cert.pem").display()
        )),
        "{err}"
    );
    // A relative --config names the absolute path it tried.
    let out = Command::new(bin())
        .args(["--config", "nope.yaml", "check-config"])
        .current_dir(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot read {}", conf.join("nope.yaml").display())),
        "{err}"
    );
}

#[test]
fn replay_with_a_config_applies_its_profiles_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("mine.yaml"),
        "version: 1\nname: mine\nchain: mychain\nrules:\n  - name: tip\n    regex: 'new tip (?P<h>\\d+)'\n    actions:\n      - gauge: chain_block_height\n        value: h\n",
    );
    let cfg = d.join("chainwatch.yaml");
    write(
        &cfg,
        "version: 1\nprofiles: [mine.yaml]\nlabels: {node: '${NODE_NAME}', region: eu-central, network: testnet}\nmax_line_bytes: 256\nsources: [{type: file, name: f, paths: [x]}]\n",
    );
    let log = d.join("node.log");
    write(
        &log,
        &format!(
            "new tip 5\n[INFO] BLOCK FOUND! height=6\nnew tip 9 {}\n",
            "x".repeat(300)
        ),
    );
    let log = log.to_str().unwrap();
    let samples = |out: Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        parse(&text(&out.stdout))
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let m = samples(run(
        &["replay", log],
        &cfg,
        &[("NODE_NAME", "n4")],
        elsewhere.path(),
    ));
    let want = [
        ("chain", "mychain"),
        ("network", "testnet"),
        ("node", "n4"),
        ("region", "eu-central"),
    ];
    assert_eq!(value(&m, "chain_block_height", &want), Some(9.0));
    // The configuration's max_line_bytes applied: the long line was truncated.
    assert_eq!(
        value(&m, "chainwatch_lines_truncated_total", &[]),
        Some(1.0)
    );
    for (series, _) in &m {
        assert_eq!(series.labels.get("node").map(String::as_str), Some("n4"));
    }
    // Flags override: a label, and the profiles.
    let m = samples(run(
        &[
            "replay",
            "--label",
            "node=other",
            "--profile",
            "dilithion",
            log,
        ],
        &cfg,
        &[("NODE_NAME", "n4")],
        d,
    ));
    assert_eq!(
        value(
            &m,
            "chain_blocks_mined_total",
            &[
                ("node", "other"),
                ("chain", "dilithion"),
                ("region", "eu-central")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(value(&m, "chain_block_height", &[]), Some(6.0));
    // The configuration's labels are checked like everywhere else.
    let out = run(&["replay", log], &cfg, &[], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("labels.node: environment variable NODE_NAME is not set"),
        "{}",
        text(&out.stderr)
    );
    // Neither a profile nor a configuration: invalid input.
    let out = replay(&[log]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--profile"),
        "{}",
        text(&out.stderr)
    );
}
