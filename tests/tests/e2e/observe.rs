//! The operator's view of the real server binary: Prometheus metrics by route template, JSON
//! logs with one line per refusal (code, user, client address), route templates instead of paths
//! in the log, and `X-Forwarded-For` believed only from a trusted proxy.

use serde_json::Value;
use tapgate_tests::process::{ServeOptions, ServerProcess, server_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_json_logs_say_what_was_refused_and_for_whom() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = ServeOptions {
        extra_args: vec!["--trusted-proxy".into(), "127.0.0.2".into()],
        env: vec![("TAPGATE_LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &opts);
    let (s, _, e) = server_cli(&data, None, &["user", "add", "alice"]);
    assert!(s.success(), "{e}");
    let (_, token, _) = server_cli(&data, None, &["token", "issue", "alice"]);
    let token = token.trim().to_string();
    let direct = reqwest::Client::new();
    let via_proxy = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().ok())
        .build()
        .unwrap();
    let base = server.base.clone();

    // A refusal from alice through the trusted proxy, one from a client that forges the header,
    // and a request whose path carries a secret.
    let resp = via_proxy
        .put(format!("{base}/-/package/left-pad/dist-tags/latest"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
        .json(&"1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A publish the gate refuses: the policy asks for a tap and alice has no key yet.
    let tgz = crate::publish_support::tarball("fresh", "1.0.0", "f");
    let resp = direct
        .put(format!("{base}/fresh"))
        .bearer_auth(&token)
        .json(&crate::publish_support::publish_body("fresh", "1.0.0", &tgz))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = direct
        .get(format!("{base}/-/whoami"))
        .bearer_auth("tg_api_forged")
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let secret = "tg_ses_TheSecretOfSomeDoneUrlThatMustNotBeLogged";
    let resp = direct.get(format!("{base}/-/v1/done/approvals/{secret}")).send().await.unwrap();
    assert_eq!(resp.status(), 410);

    let metrics = direct.get(format!("{base}/-/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    // Parse the exposition format: every sample line is NAME{LABELS} VALUE with a number.
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        samples.insert(series.to_string(), value);
    }
    let get = |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(get(r#"tapgate_http_requests_total{method="GET",route="/-/whoami",status="401"}"#), 1.0);
    assert_eq!(
        get(
            r#"tapgate_http_requests_total{method="GET",route="/-/v1/done/approvals/{secret}",status="410"}"#
        ),
        1.0
    );
    assert_eq!(get(r#"tapgate_http_request_duration_seconds_count{method="GET",route="/-/whoami"}"#), 1.0);
    assert_eq!(
        get(r#"tapgate_gate_decisions_total{action="publish",outcome="refused",reason="no_usable_key"}"#),
        1.0
    );
    assert_eq!(get("tapgate_approvals_pending"), 0.0);
    assert!(get("tapgate_db_pool_max_connections") >= 1.0);
    assert!(!text.contains(secret));

    // Every log line is one JSON object; refusals say code, user and client, and the route
    // template stands where a path would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let log = server.log();
        if log.matches("request refused").count() >= 3 || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let refused: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request refused").collect();
    let by_alice = refused.iter().find(|l| l["user"] == "alice").unwrap_or_else(|| panic!("{refused:?}"));
    assert_eq!(by_alice["code"], "package_not_found");
    assert_eq!(by_alice["client"], "198.51.100.7", "the trusted proxy's client, not the forged hop");
    assert_eq!(by_alice["route"], "/-/package/{name}/dist-tags/{tag}");
    let forged =
        refused.iter().find(|l| l["code"] == "unauthorized").unwrap_or_else(|| panic!("{refused:?}"));
    assert_eq!(forged["client"], "127.0.0.1", "an untrusted peer's X-Forwarded-For is ignored");
    assert_eq!(forged["user"], "-");
    assert!(refused.iter().any(|l| l["code"] == "policy_violation" && l["user"] == "alice"));
    assert!(!log.contains(secret), "the done URL's secret never reaches the log");
    assert!(!log.contains(&token));
    assert!(server.terminate().success());
}
