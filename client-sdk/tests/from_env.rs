//! `from_env`, in a test binary of its own: it is the only test that
//! changes the process environment, and it does so in one test function.

mod fake_broker;

const WIRE: proto::socket::Wire = proto::socket::Wire::Records;

use std::os::fd::AsRawFd;

use client_sdk::{Client, Error, BROKER_FD_ENV};
use fake_broker::FakeBroker;

fn not_under_sluice(result: Result<Client, Error>) -> String {
    match result {
        Err(Error::NotUnderSluice { why }) => why,
        other => panic!("expected NotUnderSluice, got {other:?}"),
    }
}

#[test]
fn from_env_uses_the_inherited_socket_or_says_not_under_sluice() {
    let broker = FakeBroker::start();
    std::env::set_var(BROKER_FD_ENV, broker.shared.as_raw_fd().to_string());
    let mut client = Client::from_env().unwrap();
    client.ping().unwrap();
    // Named after the program.
    let names = broker.stats.names.lock().unwrap().clone();
    assert!(names[0].starts_with("from_env"), "{names:?}");

    #[cfg(feature = "tokio")]
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = client_sdk::tokio::Client::from_env_named("async")
                .await
                .unwrap();
            client.ping().await.unwrap();
        });

    let (r, _w) = nix::unistd::pipe().unwrap();
    std::env::set_var(BROKER_FD_ENV, r.as_raw_fd().to_string());
    let why = not_under_sluice(Client::from_env());
    assert!(why.contains("not a socket"), "{why}");

    std::env::set_var(BROKER_FD_ENV, "not-a-number");
    not_under_sluice(Client::from_env());

    std::env::remove_var(BROKER_FD_ENV);
    let why = not_under_sluice(Client::from_env());
    assert!(why.contains("not set"), "{why}");
    let err = std::io::Error::from(Client::from_env().unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}
