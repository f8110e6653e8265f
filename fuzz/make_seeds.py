#!/usr/bin/env python3
"""Regenerates fuzz/seeds/<target>/ from the repository's real inputs: the built-in profiles
(exporter/profiles/*.yaml), the log fixtures (exporter/tests/fixtures/*.log), thresholds.yaml,
and stats documents / Prometheus text / journalctl records as the sources and tests use them.

Run from anywhere: python3 fuzz/make_seeds.py. Seeds are small files, committed; fuzzing runs
copy them into fuzz/corpus/<target>/ (gitignored) and grow that copy.
"""
import json
import re
import shutil
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"

PROFILES = sorted((ROOT / "exporter/profiles").glob("*.yaml"))
FIXTURES = {p.stem: p for p in sorted((ROOT / "exporter/tests/fixtures").glob("*.log"))}


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def profile_loader():
    for p in PROFILES:
        text = p.read_bytes()
        write("profile_loader", p.stem + ".yaml", text)
        log = FIXTURES.get(p.stem)
        if log is not None:
            # profile, NUL, a log to run through the engine built from it
            write("profile_loader", p.stem + "+log", text + b"\0" + log.read_bytes())
    write(
        "profile_loader",
        "minimal-regex",
        "version: 1\nname: t\nchain: t\nrules:\n  - name: h\n    regex: 'height=(?P<h>\\d+)'\n"
        "    examples: ['height=5']\n    actions:\n      - gauge: chain_block_height\n        value: h\n"
        "\0height=7\nx height=8\r\n\0\0height=9",
    )
    write(
        "profile_loader",
        "minimal-json",
        "name: t\nrules:\n  - name: j\n    json: {fields: [height, /a/b], require: [height]}\n"
        "    actions:\n      - gauge: chain_block_height\n        value: height\n"
        '\0{"height": 3, "a": {"b": "x"}}\nlevel=info {"height": "4"}\n',
    )
    write(
        "profile_loader",
        "minimal-api",
        "name: t\napis:\n  s:\n    type: http_json\n    path: /s\n    metrics:\n"
        "      - gauge: chain_peers\n        pointer: /peers\n"
        "      - each: /v\n        labels: {validator: /id}\n        metrics:\n"
        "          - gauge: chain_pop_validator_stake\n            pointer: /stake\n",
    )


# Minimized inputs of fixed findings, kept as seeds so that every run re-checks them.
REGRESSIONS = {
    # engine.rs: a rule without a literal prefilter (`RN` is too short) made the engine skip
    # every rule that has one.
    ("profile_loader", "regression-unfiltered-rule"):
        b"\nname: br\nrules:\n  - name: d\n    regex: 'Network?(?P<n>)\\b'\n    actions:\n"
        b"      - gauge: chain_stale_peers\n        value: n\n  - name: conn\n    regex: 'RN'\n"
        b"    actions:\n      - counter: chain_log_errors_total\n\0-Network: =1}",
    # yaml/src/lib.rs: an error at the end of a file without a final newline was reported one
    # line past the file.
    ("web_config", "regression-error-past-the-end"):
        b"http_server_config:\n  headers:\n    X-Frame-Options: deny\n    _Strict-Transport-Securitus",
    ("web_config", "regression-field-past-the-end"): b"rate_limit:\n  !t:-0b",
    ("sidecar_config", "regression-error-past-the-end"):
        b"version: 1\nprofiles: [dilithion]\nsources:\n  - {nuration, usame: ed when no",
}


def regressions():
    for (target, name), data in REGRESSIONS.items():
        write(target, name, data)


def line_engine():
    # 3 control bytes: max_line_bytes = 8 + 4*b0, piece sizes 1 + b1, 1 + b2.
    ctl = [bytes([255, 255, 255]), bytes([16, 6, 63]), bytes([2, 0, 2])]
    for i, (name, p) in enumerate(FIXTURES.items()):
        log = p.read_bytes()
        write("line_engine", name, ctl[i % len(ctl)] + log)
    everything = b"".join(p.read_bytes() for p in FIXTURES.values())
    write("line_engine", "all-fixtures", ctl[0] + everything)
    first = [p.read_bytes().split(b"\n")[0] for p in FIXTURES.values()]
    # CRLF, copytruncate NUL holes, no final newline, an over-long line, invalid UTF-8.
    write("line_engine", "crlf-nul", ctl[1] + b"\r\n".join(first) + b"\r\n\0\0\0" + first[0])
    write("line_engine", "long-invalid-utf8", ctl[2] + first[1] + b"x" * 300 + b"\n\xff\xfe" + first[2] + b"\n")


def json_mapping():
    docs = {
        "consensus-shadow": {"mode": "shadow", "total_verifications": 1523, "divergences": 0,
                             "rust_errors": 2, "divergence_rate": 0.0, "rust_error_rate": 0.0013},
        "consensus-primary": {"mode": "refactored_primary", "total_verifications": 1600, "divergences": 1,
                              "rust_errors": 2, "fallback_to_legacy": 3},
        "consensus-wrong-types": {"mode": 7, "total_verifications": "lots", "divergences": 5},
        "pop-status": {"rounds_completed": 8640, "proofs_processed": 43200, "pending_proofs": 12,
                       "active_validators": 3, "total_validators": 4, "network_health": "DEGRADED",
                       "view_changes": 3, "validators": [
                           {"id": "node_1", "stake": 10000, "rounds": 120, "accuracy": 0.99, "rewards": 42.5},
                           {"id": "node_2", "stake": 9000, "rounds": 118, "accuracy": 0.97, "rewards": 40}]},
        "pop-validators-object": {"validators": {"a": {"id": "node_1", "stake": "10"}, "b": {"id": None, "stake": True}}},
        "rpc-blockcount": {"result": 1234, "error": None, "id": "chainwatch"},
        "rpc-peerinfo": {"result": [{"addr": "188.166.255.63:8444", "pingtime": 0.182},
                                    {"addr": "134.122.4.164:8444", "pingtime": 0.091}], "error": None},
        "rpc-error": {"result": None, "error": {"code": -32601, "message": "Method not found"}},
        "rpc-bare-result": [{"addr": "x", "pingtime": "1e3"}],
    }
    for name, d in docs.items():
        write("json_mapping", name, json.dumps(d))
    write("json_mapping", "number-edge", '{"result": 1e308, "total_verifications": -0.0, "divergences": 18446744073709551616}')


def prom_text():
    native = ("# HELP bitcell_chain_height h\n# TYPE bitcell_chain_height gauge\nbitcell_chain_height 812\n"
              "bitcell_sync_progress 97.5\nbitcell_peer_count 5\nbitcell_dht_peer_count 40\n"
              "bitcell_txs_processed_total 1000\nbitcell_pending_txs 12\nbitcell_proofs_generated_total 30\n"
              "bitcell_proofs_verified_total 29\nbitcell_active_miners 4\nbitcell_banned_miners 1\n"
              "bitcell_bytes_sent_total 5e6\nbitcell_bytes_received_total 7e6\nsome_other_metric 1\n")
    write("prom_text", "bitcell-native", native)
    write("prom_text", "labels-escapes",
          'bitcell_peer_count{region="us-east",node="a \\"b\\""} 4 1700000000000\n'
          'x{a="1\\n2",b="\\\\"} -Inf\ny{le="+Inf"} NaN\nz{} +Inf\n  spaced   3  \n')
    write("prom_text", "histogram",
          "# TYPE chain_block_propagation_seconds histogram\n"
          'chain_block_propagation_seconds_bucket{chain="dilithion",le="0.5"} 1\n'
          'chain_block_propagation_seconds_bucket{chain="dilithion",le="+Inf"} 2\n'
          'chain_block_propagation_seconds_sum{chain="dilithion"} 1.75\n'
          'chain_block_propagation_seconds_count{chain="dilithion"} 2\n')
    write("prom_text", "junk", 'garbage line here\nbad{unclosed="x} 1\na{b=\nc{,,d="e",} 1e999\r\n')


def thresholds_loader():
    text = (ROOT / "thresholds.yaml").read_text()
    write("thresholds_loader", "thresholds.yaml", text)
    # rulegen's own test documents: a small valid one (renders everything), the overlay, and the
    # invalid ones (each fails one check). Cutting thresholds.yaml down does not give valid
    # documents: its sections refer to each other.
    td = ROOT / "rulegen/tests/testdata"
    for p in sorted(td.glob("*.yaml")) + sorted((td / "bad").glob("*.yaml")):
        write("thresholds_loader", ("bad-" if p.parent.name == "bad" else "") + p.name, p.read_bytes())
    write("thresholds_loader", "header-only", text.split("\nrecording_rules:")[0] + "\n")


def journal_decode():
    # 4 control bytes: max_line = 1 + b0, record cap = 16 + 8*b1, piece sizes 1 + b2, 1 + b3.
    c1 = "s=9990c99acc9649bfa32191c29267ef03;i=1;b=0123456789abcdef0123456789abcdef;m=3e8;t=660d2145a3c6a;x=2c7621a3fb80ff55"

    def rec(msg, cursor=c1):
        d = {"__CURSOR": cursor, "__REALTIME_TIMESTAMP": "1", "MESSAGE": msg, "_BOOT_ID": "x"}
        return json.dumps(d, ensure_ascii=False)

    logs = [l for p in FIXTURES.values() for l in p.read_text().splitlines()[:2]]
    stream = "\n".join(rec(l) for l in logs) + "\n"
    write("journal_decode", "fixture-messages", bytes([255, 255, 255, 255]) + stream.encode())
    forms = "\n".join([
        rec("hello wörld"),
        rec([98, 105, 110, 255, 254, 0, 120]),
        rec(["a", [98, 255]]),
        rec("l1\nl2\n"),
        rec(None),
        rec([]),
        rec("x" * 300),
        '{"__CURSOR":"nope","MESSAGE":"m"}',
        '{"MESSAGE":"m"}',
        rec([256]),
        "not json",
    ]) + "\n" + rec("unterminated")
    write("journal_decode", "message-forms", bytes([9, 29, 6, 63]) + forms.encode())


def web_config():
    # exporter/tests/web_tls.rs's forms, valid and refused; the bcrypt hash is of "x" (cost 4).
    h = "$2b$04$Lh0b9Zk8pW5u1cQb3mS6Qe1Yk8Jx4wqv9m2rT0a7nL5sF3dG6hJ2K"
    tls = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
    forms = {
        "empty": "",
        "comments": "# nothing to secure\n\n",
        "tls": tls,
        "tls-full": tls + "  min_version: TLS12\n  max_version: TLS13\n  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: ca.pem\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
        "  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: true\n",
        "auth-headers": f"basic_auth_users:\n  alice: {h}\nhttp_server_config:\n  http2: true\n  headers:\n"
        "    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
        "bad-hash": f"basic_auth_users:\n  alice: {h}\n  bob: hunter2\n",
        "bad-header": "http_server_config:\n  headers:\n    Content-Type: text/html\n",
        "rate-limit": "rate_limit:\n  interval: 1s\n  burst: 5\n",
        "bad-version": tls + "  min_version: TLS13\n  max_version: TLS12\n",
        "unclosed": "tls_server_config:\n  cert_file: [\n",
    }
    for name, text in forms.items():
        write("web_config", name, text)


def sidecar_config():
    write("sidecar_config", "default-config.yaml", (ROOT / "exporter/default-config.yaml").read_bytes())
    write("sidecar_config", "compose.yaml", (ROOT / "deploy/compose/chainwatch.yaml").read_bytes())
    # exporter/tests/config.rs's forms: every source type, caps, labels from the environment.
    write("sidecar_config", "all-sources",
          "version: 1\nprofiles: [dilithion, coinjecture]\nlabels: {node: '${NODE_NAME}', region: eu-central, network: testnet}\n"
          "max_line_bytes: 256\nmax_series_per_metric: 100\nstate_dir: state\nsources:\n"
          "  - {name: log, type: file, paths: ['../../var/log/node/*.log']}\n"
          "  - {name: j, type: journal, units: [node.service]}\n"
          "  - {name: rpc, type: jsonrpc, url: 'http://127.0.0.1:8332', interval: 200ms, timeout: 150ms, cookie_file: secrets/.cookie}\n"
          "  - {name: stats, type: http_json, url: 'http://127.0.0.1:8080/stats', interval: 15s}\n"
          "  - {name: native, type: prometheus, url: 'http://127.0.0.1:9100/metrics'}\n"
          "  - {name: up, type: health, url: 'http://127.0.0.1:8080/health'}\n")
    write("sidecar_config", "bad-version", "version: 2\nprofiles: [dilithion]\nsources: [{type: file, name: f, paths: [x]}]\n")
    write("sidecar_config", "unknown-profile", "version: 1\nprofiles: [dilithion, ../x.yaml]\nsources: [{type: file, name: f, paths: [x]}]\n")


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    for f in (profile_loader, line_engine, json_mapping, prom_text, thresholds_loader, journal_decode,
              web_config, sidecar_config, regressions):
        f()
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
