//! The database goes away under the gateway and comes back: 503 while it is down, full
//! service again within seconds, no gateway restart. Its own test binary, because it stops the
//! test cluster (LINKTOKEN_TEST_CLUSTER_DIR) that every other test uses.

use linktoken_integration::cluster::cluster;
use linktoken_integration::gateway::{self, Gateway};
use linktoken_integration::http;
use linktoken_integration::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_gives_503_and_service_recovers() {
    let c = connect().await;
    let (_, url) = gateway::login_role(&c, "gwdown").await;
    let p = purpose(&c, "gwdown", "1 hour", Some(1)).await;
    let token = issue(&c, &p, "user:1").await;
    drop(c);
    let gw = Gateway::start(&url, &["--pool-wait-ms", "1000"]);
    let link = format!("/t/{token}");
    assert_eq!(http::get(gw.addr, &link).status, 200);

    cluster("stop");
    let down = http::get(gw.addr, &link);
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.header("cache-control"), Some("no-store"));
    assert_eq!(http::get(gw.addr, "/healthz").status, 503);
    let post = http::post_form(gw.addr, &link, &[("confirm", "yes")]);
    assert_eq!(post.status, 503);

    cluster("start");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut status = 0;
    while Instant::now() < deadline {
        status = http::get(gw.addr, &link).status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        status, 200,
        "service is back without restarting the gateway"
    );
    assert_eq!(
        http::post_form(gw.addr, &link, &[("confirm", "yes")]).status,
        200
    );
    // /healthz answers from its probe (its own connection), which reconnects by itself too.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut health = 0;
    while Instant::now() < deadline && health != 200 {
        health = http::get(gw.addr, "/healthz").status;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(health, 200, "/healthz is 200 again");
    let c = connect().await;
    assert_eq!(peek_status(&c, &token, &p).await, "used");
}
