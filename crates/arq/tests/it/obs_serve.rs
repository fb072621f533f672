//! `arq serve` exports its spans over OTLP/HTTP to `[telemetry] otlp_endpoint` and flushes them when
//! it stops on SIGTERM (`specs/observability.md`).

use arqon_testkit::OtlpReceiver;

use crate::cli_serve::{Served, WAIT, serve, terminate, token_from_hint, upgrade};

// AC-OBS-6
#[test]
fn serve_exports_its_connect_span_to_the_configured_otlp_endpoint() {
    let receiver = OtlpReceiver::start().expect("otlp receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[node]\nid = \"obs-1\"\ndev = true\nlisten = \"127.0.0.1:0\"\n\
         [auth]\ndev_keys_dir = \"keys\"\n\
         [telemetry]\nlog_format = \"json\"\notlp_endpoint = \"{}\"\n",
        receiver.url()
    );
    std::fs::write(dir.path().join("node.toml"), config).expect("write config");
    let served: Served = serve(&["--config", "node.toml"], dir.path());
    let token = token_from_hint(&served, dir.path());
    assert_eq!(
        upgrade(&served.addr, &token),
        "HTTP/1.1 101 Switching Protocols"
    );

    let Served { mut guard, .. } = served;
    let exit = terminate(&mut guard);
    assert!(exit.success(), "{exit:?}");

    // The batch would wait seconds to export; the span arrives because the exit flushed it.
    let spans = receiver.collect(
        WAIT,
        |span| span.name == "shield.connect",
        |spans| !spans.is_empty(),
    );
    let connect = spans.first().expect("the shield.connect span was exported");
    assert_eq!(connect.service, "arqonbus");
    assert_eq!(connect.attributes["outcome"], "accepted");
    assert_eq!(connect.attributes["tenant"], "dev");
    assert_eq!(connect.trace_id.len(), 32);
    assert_eq!(connect.attributes["trace_id"], connect.trace_id);
}
