//! The bot's own `GET /metrics`, scraped by a real Prometheus while the bot runs over the fake.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::bot::{world, Bot, Mode};
use support::discord::{
    FakeDiscord, Fault, GatewayFault, Interaction, GENERAL_CHANNEL_ID, OWNER_ID,
};
use support::prometheus::{free_port, PrometheusFixture};

const ADMIN_TOKEN: &str = "adm_metrics-scrape-token-0123456789";
const CREATE_CHANNEL: &str = "POST /guilds/{guild}/channels";

/// The text of the first answer to `i`, and whether it was private; a deferral waits for its
/// filled-in placeholder.
async fn answer(fake: &FakeDiscord, i: &Interaction) -> (String, bool) {
    let first = fake.wait_response(i).await;
    if first.kind != 5 {
        return (first.content().to_string(), first.ephemeral());
    }
    let text = fake
        .wait_until(Duration::from_secs(15), |f| {
            f.original(i)
                .and_then(|m| m["content"].as_str().map(String::from))
                .filter(|c| !c.is_empty())
        })
        .await
        .expect("the deferral is filled in");
    (text, first.ephemeral())
}

/// The value of `query` in Prometheus once it equals `want`, or what it last was.
async fn settles(prom: &PrometheusFixture, query: &str, want: f64) -> Option<f64> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        let res: Value = client
            .get(format!("{}/api/v1/query", prom.url()))
            .query(&[("query", query)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["status"], "success", "{query}: {res}");
        let results = res["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(results.len() <= 1, "{query} matches several series: {res}");
        last = results
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok());
        if last == Some(want) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_interactions_by_outcome_and_open_incidents_by_severity() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let listen = format!("127.0.0.1:{}", free_port());
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Proxy,
        "",
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    fake.wait_ready().await;

    // Two incidents declared (the first channel after a 429, which the bot waits out), and one
    // mistake: an update typed outside any incident's channel.
    fake.fail_next(CREATE_CHANNEL, Fault::RateLimit { retry_after: 0.2 });
    for (title, severity) in [("Checkout returns 500", "SEV1"), ("Search is slow", "SEV3")] {
        let i = fake.slash(
            OWNER_ID,
            GENERAL_CHANNEL_ID,
            "incident",
            json!({"open": {"title": title, "severity": severity}}),
        );
        let (text, _) = answer(&fake, &i).await;
        assert!(text.contains("<#"), "{text}");
    }
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"update": {"message": "still looking"}}),
    );
    let (text, private) = answer(&fake, &i).await;
    assert!(private && text.contains("which incident?"), "{text}");

    // A reconnect that keeps the session, and a heartbeat Discord asks for, so that serenity
    // has a round trip to report.
    fake.gateway_fault(GatewayFault::Reconnect);
    fake.wait_until(Duration::from_secs(15), |f| {
        f.frames().iter().any(|fr| fr.op() == Some(6)).then_some(())
    })
    .await
    .expect("the bot resumes after op 7");
    fake.gateway_fault(GatewayFault::RequestHeartbeat);

    let prom = PrometheusFixture::scraping(&listen, ADMIN_TOKEN);
    let expect = [
        (r#"up{job="sitrep"}"#, 1.0),
        (
            r#"sitrep_interactions_total{kind="command",command="incident open",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"sitrep_interactions_total{kind="command",command="incident update",outcome="user_error"}"#,
            1.0,
        ),
        (
            r#"sum(sitrep_interactions_total{outcome="internal_error"}) or vector(0)"#,
            0.0,
        ),
        (
            r#"sitrep_interaction_ack_seconds_count{kind="command",command="incident open"}"#,
            2.0,
        ),
        // Deferred at once: both first responses well inside Discord's 3 s.
        (
            r#"sitrep_interaction_ack_seconds_bucket{kind="command",command="incident open",le="3"}"#,
            2.0,
        ),
        (r#"sitrep_open_incidents{severity="SEV1"}"#, 1.0),
        (r#"sitrep_open_incidents{severity="SEV2"}"#, 0.0),
        (r#"sitrep_open_incidents{severity="SEV3"}"#, 1.0),
        (r#"sitrep_gateway_sessions_total{event="ready"}"#, 1.0),
        (r#"sitrep_gateway_sessions_total{event="resumed"}"#, 1.0),
        (r#"count(sitrep_gateway_latency_seconds < 5)"#, 1.0),
        (
            r#"sitrep_discord_requests_total{route="create channel",status="2xx"}"#,
            2.0,
        ),
        (
            r#"sitrep_discord_requests_total{route="create channel",status="429"}"#,
            1.0,
        ),
        (
            r#"sitrep_discord_rate_limited_total{route="create channel"}"#,
            1.0,
        ),
        (r#"sitrep_discord_invalid_requests"#, 1.0),
        (r#"sitrep_outbox_depth"#, 0.0),
    ];
    let mut wrong = Vec::new();
    for (query, want) in expect {
        let got = settles(&prom, query, want).await;
        if got != Some(want) {
            wrong.push(format!("{query}: {got:?}, not {want}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Direct to "discord.com", serenity waits out a 429 itself: the bot never sees it, but counts
/// the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_counts_the_waits_of_serenitys_own_limiter() {
    let fake = FakeDiscord::start().await;
    let w = world(&fake);
    let listen = format!("127.0.0.1:{}", free_port());
    let _bot = Bot::start_with_env(
        &fake,
        w,
        Mode::Direct,
        "",
        &[
            ("SITREP_HTTP__LISTEN", listen.as_str()),
            ("SITREP_HTTP_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    fake.wait_ready().await;
    fake.fail_next(CREATE_CHANNEL, Fault::RateLimit { retry_after: 0.2 });
    let i = fake.slash(
        OWNER_ID,
        GENERAL_CHANNEL_ID,
        "incident",
        json!({"open": {"title": "Checkout returns 500", "severity": "SEV2"}}),
    );
    let (text, _) = answer(&fake, &i).await;
    assert!(text.contains("<#"), "{text}");

    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{listen}/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let value = |series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    assert!(
        value(r#"sitrep_discord_rate_limit_waits_total{global="false"}"#) >= Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(r#"sitrep_discord_requests_total{route="create channel",status="2xx"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(r#"sitrep_discord_rate_limited_total{route="create channel"}"#),
        None,
        "the 429 never reached the bot: {text}"
    );
    assert_eq!(
        value(r#"sitrep_open_incidents{severity="SEV2"}"#),
        Some(1.0),
        "{text}"
    );
}
