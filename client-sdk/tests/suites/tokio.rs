// The tokio client's suite, included by `tokio.rs` (Linux wire) and
// `tokio_stream.rs` (the macOS wire), which each name their `WIRE`.

use std::fs;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::time::Duration;

use client_sdk::tokio::{Client, MAX_IN_FLIGHT};
use client_sdk::{Access, Error, OpenOptions, ProtocolError, QueryAnswer};
use fake_broker::{probe, probe_closed, temp_path, Config, FakeBroker};
use proto::fd::FdError;
use tokio::task::JoinSet;
use tokio::time::timeout;

/// No test may hang: every wait is bounded.
const LIMIT: Duration = Duration::from_secs(20);

async fn client(broker: &FakeBroker) -> Client {
    Client::connect(broker.shared(), "tokio-test")
        .await
        .unwrap()
}

/// Waits for every task, each of which must succeed, within [`LIMIT`].
async fn all_done(mut tasks: JoinSet<()>, what: &str) {
    timeout(LIMIT, async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

fn reordering() -> FakeBroker {
    FakeBroker::with(Config {
        reorder_batch: Some(MAX_IN_FLIGHT),
        ..Config::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_pipelined_requests_are_matched_by_id() {
    let broker = reordering();
    let client = client(&broker).await;
    let mut tasks = JoinSet::new();
    for i in 0..1000 {
        let client = client.clone();
        tasks.spawn(async move {
            let path = format!("/pipelined/{i}");
            let answer = client.query(&path, Access::Read).await.unwrap();
            assert_eq!(answer, QueryAnswer::Allowed { rule: Some(path) });
        });
    }
    all_done(tasks, "pipelined requests hung").await;
    assert_eq!(broker.stats.requests.load(Ordering::SeqCst), 1000);
    assert!(
        broker.stats.reordered.load(Ordering::SeqCst) > 0,
        "the fake never answered out of order"
    );
    client.ping().await.unwrap();
}

/// Large frames from many tasks at once on one connection arrive whole:
/// on a stream a frame can go out in several writes, and two tasks'
/// writes must never interleave (a record is sent whole anyway). The
/// answers, as large, are read in pieces and matched whole too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_frames_from_many_tasks_arrive_whole() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    let mut tasks = JoinSet::new();
    for i in 0..48 {
        let client = client.clone();
        tasks.spawn(async move {
            let filler = char::from(b'a' + (i % 26) as u8).to_string().repeat(40_000);
            let path = format!("/large/{i}/{filler}");
            let answer = client.query(&path, Access::Read).await.unwrap();
            assert_eq!(answer, QueryAnswer::Allowed { rule: Some(path) });
        });
    }
    all_done(tasks, "large requests hung").await;
    assert_eq!(broker.stats.requests.load(Ordering::SeqCst), 48);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_opens_get_their_own_files() {
    let broker = reordering();
    let client = client(&broker).await;
    let paths: Vec<_> = (0..100)
        .map(|i| {
            let path = temp_path("pipelined-open");
            fs::write(&path, format!("file {i}")).unwrap();
            path
        })
        .collect();
    let mut tasks = JoinSet::new();
    for (i, path) in paths.iter().cloned().enumerate() {
        let client = client.clone();
        tasks.spawn(async move {
            let mut file = client
                .open(&path, OpenOptions::new().read(true))
                .await
                .unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, format!("file {i}"));
        });
    }
    timeout(LIMIT, async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    })
    .await
    .unwrap();
    for path in paths {
        fs::remove_file(path).unwrap();
    }
}

#[tokio::test]
async fn handshake_query_ping_and_denial_on_a_current_thread_runtime() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    assert_eq!(client.session(), fake_broker::SESSION);
    assert_eq!(client.policy().name, "fake");
    client.ping().await.unwrap();
    assert_eq!(
        client.query("/x/ask", Access::Read).await.unwrap(),
        QueryAnswer::WouldAsk {
            rule: Some("ask-home".into())
        }
    );
    let err = client
        .open("/x/denied", OpenOptions::new().read(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(matches!(Error::from_io(&err), Some(Error::Denied { .. })));
    let err = client.open("/x", &OpenOptions::new()).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    client.ping().await.unwrap();
}

/// Starts `n` requests the fake holds, and waits until it has them all.
async fn held(
    broker: &FakeBroker,
    client: &Client,
    n: usize,
) -> JoinSet<Result<QueryAnswer, Error>> {
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let client = client.clone();
        tasks.spawn(async move { client.query("/fake/hold", Access::Read).await });
    }
    let waiting = tokio::task::spawn_blocking({
        let stats = std::sync::Arc::clone(&broker.stats);
        move || {
            let deadline = std::time::Instant::now() + LIMIT;
            while stats.held.load(Ordering::SeqCst) < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "requests never arrived"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    waiting.await.unwrap();
    tasks
}

async fn all_fail(mut tasks: JoinSet<Result<QueryAnswer, Error>>, check: fn(&Error) -> bool) {
    timeout(LIMIT, async {
        while let Some(done) = tasks.join_next().await {
            let err = done.unwrap().unwrap_err();
            assert!(check(&err), "{err:?}");
        }
    })
    .await
    .expect("a pending request hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_closing_fails_every_pending_request() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    let tasks = held(&broker, &client, 10).await;
    let err = timeout(LIMIT, client.query("/fake/hangup", Access::Read))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    all_fail(tasks, |e| matches!(e, Error::Closed)).await;
    // And later requests fail at once.
    assert!(matches!(client.ping().await, Err(Error::Closed)));
    // A new connection works.
    client.new_connection().await.unwrap().ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_requests_than_slots_wait_and_are_failed_too() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    // Every slot taken by a held request, then more that must wait.
    let tasks = held(&broker, &client, MAX_IN_FLIGHT).await;
    let mut waiting = JoinSet::new();
    for _ in 0..10 {
        let client = client.clone();
        waiting.spawn(async move { client.query("/never/sent", Access::Read).await });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        broker.stats.requests.load(Ordering::SeqCst),
        MAX_IN_FLIGHT,
        "more than MAX_IN_FLIGHT requests were sent"
    );
    // The broker goes away with all of them pending.
    broker.hang_up();
    all_fail(tasks, |e| matches!(e, Error::Closed)).await;
    all_fail(waiting, |e| matches!(e, Error::Closed)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_record_fails_every_pending_request() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    let tasks = held(&broker, &client, 5).await;
    let err = timeout(LIMIT, client.query("/fake/garbage", Access::Read))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::Frame(_))),
        "{err:?}"
    );
    all_fail(tasks, |e| {
        matches!(e, Error::Protocol(ProtocolError::Frame(_)))
    })
    .await;
    assert!(matches!(client.ping().await, Err(Error::Protocol(_))));
}

#[tokio::test]
async fn a_descriptor_with_a_denial_is_closed() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    let (planted, mut peer) = probe();
    broker.plant(planted);
    let err = client
        .open("/fake/fd-with-denied", OpenOptions::new().read(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        matches!(
            Error::from_io(&err),
            Some(Error::Protocol(ProtocolError::Fd(FdError::Unexpected {
                received: 1
            })))
        ),
        "{err:?}"
    );
    assert!(
        probe_closed(&mut peer),
        "the planted descriptor is still open"
    );
}

#[tokio::test]
async fn a_response_for_an_unknown_id_breaks_the_connection() {
    let broker = FakeBroker::start();
    let client = client(&broker).await;
    let err = client
        .query("/fake/wrong-id", Access::Read)
        .await
        .unwrap_err();
    // The fake answered id + 1000, so this request's own answer never comes:
    // it fails with the connection.
    assert!(
        matches!(err, Error::Protocol(ProtocolError::UnknownId { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_version_and_not_under_sluice() {
    let broker = FakeBroker::with(Config {
        version: 999,
        ..Config::default()
    });
    assert!(matches!(
        Client::connect(broker.shared(), "old").await,
        Err(Error::Refused { .. })
    ));
    let (r, _w) = nix::unistd::pipe().unwrap();
    use std::os::fd::AsFd;
    assert!(matches!(
        Client::connect(r.as_fd(), "x").await,
        Err(Error::NotUnderSluice { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_give_their_slots_back_when_answered() {
    // The fake gathers requests until none has come for 300 ms, then
    // answers them all: long after their callers gave up.
    let broker = FakeBroker::with(Config {
        reorder_batch: Some(10 * MAX_IN_FLIGHT),
        gather: Duration::from_millis(300),
        ..Config::default()
    });
    let client = client(&broker).await;
    let mut tasks = JoinSet::new();
    for i in 0..(MAX_IN_FLIGHT + 10) {
        let client = client.clone();
        tasks.spawn(async move {
            let asked = client.query(format!("/cancelled/{i}"), Access::Read);
            timeout(Duration::from_millis(20), asked).await.is_err()
        });
    }
    while let Some(gave_up) = tasks.join_next().await {
        assert!(
            gave_up.unwrap(),
            "a request was answered before the timeout"
        );
    }
    // Every slot is held until the broker answers; then the next request
    // gets one and its answer is its own.
    timeout(LIMIT, client.query("/after", Access::Read))
        .await
        .expect("slots were never given back")
        .unwrap();
    // At most MAX_IN_FLIGHT before the answers, then "/after" (fewer if a
    // slow machine cancelled some before they were sent).
    let sent = broker.stats.requests.load(Ordering::SeqCst);
    assert!(sent <= MAX_IN_FLIGHT + 1, "{sent} requests sent");
}
