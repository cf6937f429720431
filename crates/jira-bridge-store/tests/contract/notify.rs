//! Coordination between replicas: notifications and named locks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jira_bridge_store::notify::{Channel, Notification};
use jira_bridge_store::{Backend, Store};

pub async fn job_notifications_reach_every_listener(store: &Store) {
    let listener = store.listen().await.unwrap();
    assert_eq!(listener.is_some(), store.backend() == Backend::Postgres);
    let payload = format!("job-{}", uuid::Uuid::new_v4());
    // On SQLite there is no one else to tell: sending is a no-op.
    store.notify(Channel::Jobs, &payload).await.unwrap();
    let Some(mut listener) = listener else {
        return;
    };
    // Other tests share the database (not the schema): skip their notifications.
    let want = Notification {
        channel: Channel::Jobs,
        payload,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = tokio::time::timeout(Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        if got.as_ref() == Some(&want) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "our notification never came"
        );
    }
}

pub async fn named_locks_exclude_each_other_until_released(store: &Store) {
    let name = format!("test/{}", uuid::Uuid::new_v4());
    let first = store.lock_named(&name).await.unwrap();
    let acquired = Arc::new(AtomicBool::new(false));
    let waiter = {
        let store = store.clone();
        let name = name.clone();
        let acquired = acquired.clone();
        tokio::spawn(async move {
            let lock = store.lock_named(&name).await.unwrap();
            acquired.store(true, Ordering::SeqCst);
            lock.release().await.unwrap();
        })
    };
    // Another name is free meanwhile.
    store
        .lock_named(&format!("{name}/other"))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    assert!(
        !acquired.load(Ordering::SeqCst),
        "the second holder waits for the first"
    );
    first.release().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the waiter gets the lock once it is released")
        .unwrap();
    assert!(acquired.load(Ordering::SeqCst));
}

contract!(
    job_notifications_reach_every_listener,
    named_locks_exclude_each_other_until_released,
);
