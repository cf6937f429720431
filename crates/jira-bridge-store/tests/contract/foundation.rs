use chrono::Duration;
use jira_bridge_store::audit::{AuditFilter, NewAuditEntry, Outcome};
use jira_bridge_store::connections::NewConnection;
use jira_bridge_store::tenants::NewApiKey;
use jira_bridge_store::{ConnectionId, PageRequest, Store, StoreError, TenantId, Timestamp};

fn key(hash: &str) -> NewApiKey {
    NewApiKey {
        name: "default".into(),
        prefix: format!("jbk_{}", &hash[..4]),
        key_hash: hash.into(),
        scopes: vec!["read".into(), "write".into()],
    }
}

fn connection(tenant: &TenantId, owner: Option<&str>, secret: &[u8]) -> NewConnection {
    NewConnection {
        id: ConnectionId::new(),
        tenant_id: tenant.clone(),
        kind: "cloud_token".into(),
        owner: owner.map(str::to_owned),
        name: "Jira".into(),
        base_url: "https://example.atlassian.net".into(),
        cloud_id: None,
        site_name: Some("example".into()),
        account_id: Some("5b10a2844c20165700ede21g".into()),
        secret: secret.to_vec(),
        secret_key_id: "k1".into(),
        scopes: vec!["read:jira-work".into()],
        token_expires_at: Some(Timestamp::now()),
        verification_status: "valid".into(),
        last_verified_at: Some(Timestamp::now()),
        email: Some("me@example.com".into()),
        account_name: Some("Me".into()),
        deployment: Some("Cloud".into()),
        server_version: None,
    }
}

fn audit(tenant: &TenantId, action: &str, outcome: Outcome) -> NewAuditEntry {
    NewAuditEntry {
        tenant_id: Some(tenant.clone()),
        actor: "admin".into(),
        action: action.into(),
        target_kind: Some("tenant".into()),
        target_id: Some(tenant.to_string()),
        outcome,
        detail: serde_json::json!({"n": 1}),
        request_id: Some("req-1".into()),
    }
}

pub async fn migrations_are_idempotent_and_complete(store: &Store) {
    assert!(store.pending_migrations().await.unwrap().is_empty());
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

pub async fn tenants_are_unique_by_name_and_paged(store: &Store) {
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(store.create_tenant(&format!("t{i}")).await.unwrap());
    }
    let dup = store.create_tenant("t0").await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");

    let got = store.get_tenant(&made[2].id).await.unwrap().unwrap();
    assert_eq!(got, made[2]);

    let mut seen = Vec::new();
    let mut page = PageRequest::new(Some(2), None).unwrap();
    loop {
        let p = store.list_tenants(&page).await.unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items.into_iter().map(|t| t.name));
        match p.next_cursor {
            Some(c) => page = PageRequest::new(Some(2), Some(&c)).unwrap(),
            None => break,
        }
    }
    assert_eq!(seen, vec!["t4", "t3", "t2", "t1", "t0"]);
}

pub async fn api_keys_are_found_by_hash_revoked_and_touched(store: &Store) {
    let (tenant, first) = store
        .create_tenant_with_key("acme", key("aaaa1111"))
        .await
        .unwrap();
    assert_eq!(first.tenant_id, tenant.id);
    assert_eq!(first.scopes, vec!["read", "write"]);
    assert!(first.last_used_at.is_none());

    let found = store
        .find_api_key_by_hash("aaaa1111")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, first);
    assert!(store.find_api_key_by_hash("nope").await.unwrap().is_none());

    let dup = store.create_api_key(&tenant.id, key("aaaa1111")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");

    let second = store
        .create_api_key(&tenant.id, key("bbbb2222"))
        .await
        .unwrap();
    let listed = store
        .list_api_keys(&tenant.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.items[0].id, second.id, "newest first");

    // Touch: written once, then throttled.
    let t0 = Timestamp::now();
    store
        .touch_api_key(
            &first.id,
            t0,
            Timestamp::from(t0.as_datetime() - Duration::seconds(60)),
        )
        .await
        .unwrap();
    let after = store
        .get_api_key(&tenant.id, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.last_used_at, Some(t0.as_datetime()));
    let t1 = Timestamp::from(t0.as_datetime() + Duration::seconds(10));
    store
        .touch_api_key(
            &first.id,
            t1,
            Timestamp::from(t1.as_datetime() - Duration::seconds(60)),
        )
        .await
        .unwrap();
    let throttled = store
        .get_api_key(&tenant.id, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        throttled.last_used_at,
        Some(t0.as_datetime()),
        "within interval: unchanged"
    );

    let revoked = store.revoke_api_key(&tenant.id, &first.id).await.unwrap();
    assert!(revoked.is_revoked());
    let again = store.revoke_api_key(&tenant.id, &first.id).await.unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "first revocation time kept"
    );
    let by_hash = store
        .find_api_key_by_hash("aaaa1111")
        .await
        .unwrap()
        .unwrap();
    assert!(by_hash.is_revoked());

    let missing = store
        .create_api_key(&TenantId::new(), key("cccc3333"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub async fn api_keys_are_tenant_scoped(store: &Store) {
    let (a, a_key) = store
        .create_tenant_with_key("a", key("a0a0a0a0"))
        .await
        .unwrap();
    let (b, _) = store
        .create_tenant_with_key("b", key("b0b0b0b0"))
        .await
        .unwrap();
    assert!(store.get_api_key(&b.id, &a_key.id).await.unwrap().is_none());
    let r = store.revoke_api_key(&b.id, &a_key.id).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(!store
        .get_api_key(&a.id, &a_key.id)
        .await
        .unwrap()
        .unwrap()
        .is_revoked());
    let listed = store
        .list_api_keys(&b.id, &PageRequest::first(50))
        .await
        .unwrap();
    assert!(listed.items.iter().all(|k| k.tenant_id == b.id));
}

pub async fn audit_entries_filter_and_page(store: &Store) {
    let a = store.create_tenant("a").await.unwrap();
    let b = store.create_tenant("b").await.unwrap();
    let before = Timestamp::now();
    for i in 0..6 {
        let outcome = if i % 3 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        store
            .record_audit(audit(&a.id, "connection.verify", outcome))
            .await
            .unwrap();
    }
    let last = store
        .record_audit(audit(&a.id, "tenant.create", Outcome::Success))
        .await
        .unwrap();
    assert_eq!(last.detail, serde_json::json!({"n": 1}));
    assert_eq!(last.request_id.as_deref(), Some("req-1"));
    store
        .record_audit(audit(&b.id, "tenant.create", Outcome::Success))
        .await
        .unwrap();

    let all = store
        .list_audit(&a.id, &AuditFilter::default(), &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 7, "other tenant's entry is not listed");
    assert_eq!(all.items[0].id, last.id);
    assert_eq!(
        store.get_audit(&a.id, &last.id).await.unwrap().as_ref(),
        Some(&last)
    );
    assert!(
        store.get_audit(&b.id, &last.id).await.unwrap().is_none(),
        "tenant-scoped"
    );

    let failures = AuditFilter {
        action: Some("connection.verify".into()),
        outcome: Some("failure".into()),
        ..AuditFilter::default()
    };
    let f = store
        .list_audit(&a.id, &failures, &PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(f.items.len(), 2);

    let mut total = 0;
    let mut req = PageRequest::new(Some(3), None).unwrap();
    loop {
        let p = store
            .list_audit(&a.id, &AuditFilter::default(), &req)
            .await
            .unwrap();
        total += p.items.len();
        let Some(c) = p.next_cursor else { break };
        req = PageRequest::new(Some(3), Some(&c)).unwrap();
    }
    assert_eq!(total, 7);

    let future = AuditFilter {
        from: Some(Timestamp::from(
            Timestamp::now().as_datetime() + Duration::hours(1),
        )),
        ..AuditFilter::default()
    };
    assert!(store
        .list_audit(&a.id, &future, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let window = AuditFilter {
        from: Some(before),
        to: Some(Timestamp::from(
            Timestamp::now().as_datetime() + Duration::seconds(1),
        )),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .list_audit(&a.id, &window, &PageRequest::first(100))
            .await
            .unwrap()
            .items
            .len(),
        7
    );
}

pub async fn connections_round_trip_and_are_tenant_scoped(store: &Store) {
    let a = store.create_tenant("a").await.unwrap();
    let b = store.create_tenant("b").await.unwrap();
    let new = connection(&a.id, Some("user-1"), b"ciphertext-1");
    let c = store.insert_connection(new.clone()).await.unwrap();
    assert_eq!(c.id, new.id);
    assert_eq!(c.secret, b"ciphertext-1");
    assert_eq!(c.token_version, 0);
    assert!(c.enabled);
    assert_eq!(c.scopes, vec!["read:jira-work"]);
    assert_eq!(
        c.token_expires_at,
        new.token_expires_at.map(|t| t.as_datetime())
    );
    store
        .insert_connection(connection(&a.id, Some("user-2"), b"x"))
        .await
        .unwrap();
    store
        .insert_connection(connection(&a.id, None, b"y"))
        .await
        .unwrap();

    assert!(store.get_connection(&b.id, &c.id).await.unwrap().is_none());
    assert!(!store.delete_connection(&b.id, &c.id).await.unwrap());
    let r = store
        .set_connection_verification(&b.id, &c.id, "invalid", Timestamp::now())
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)));

    let mine = store
        .list_connections(&a.id, Some("user-1"), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(
        store
            .list_connections(&a.id, None, &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert!(store
        .list_connections(&b.id, None, &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());

    let at = Timestamp::now();
    let v = store
        .set_connection_verification(&a.id, &c.id, "expired", at)
        .await
        .unwrap();
    assert_eq!(v.verification_status, "expired");
    assert_eq!(v.last_verified_at, Some(at.as_datetime()));

    let bad_status = store
        .set_connection_verification(&a.id, &c.id, "weird", at)
        .await;
    assert!(
        bad_status.is_err(),
        "check constraint refuses unknown status"
    );

    let orphan = store
        .insert_connection(connection(&TenantId::new(), None, b"z"))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::Conflict { .. })),
        "{orphan:?}"
    );

    assert!(store.delete_connection(&a.id, &c.id).await.unwrap());
    assert!(store.get_connection(&a.id, &c.id).await.unwrap().is_none());
}

pub async fn connection_secret_replacement_is_compare_and_swap(store: &Store) {
    let a = store.create_tenant("a").await.unwrap();
    let c = store
        .insert_connection(connection(&a.id, None, b"v0"))
        .await
        .unwrap();
    let v1 = store
        .replace_connection_secret(&a.id, &c.id, 0, b"v1", "k1", None)
        .await
        .unwrap()
        .expect("first writer wins");
    assert_eq!(v1.token_version, 1);
    assert_eq!(v1.secret, b"v1");
    assert_eq!(v1.token_expires_at, None);
    let stale = store
        .replace_connection_secret(&a.id, &c.id, 0, b"v1-other", "k1", None)
        .await
        .unwrap();
    assert!(stale.is_none(), "a writer holding version 0 loses");
    let other_tenant = store.create_tenant("b").await.unwrap();
    let r = store
        .replace_connection_secret(&other_tenant.id, &c.id, 1, b"x", "k1", None)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)));
    let now = store.get_connection(&a.id, &c.id).await.unwrap().unwrap();
    assert_eq!(now.secret, b"v1");
}

pub async fn sealed_secrets_are_listed_and_replaced_only_if_unchanged(store: &Store) {
    let a = store.create_tenant("a").await.unwrap();
    let b = store.create_tenant("b").await.unwrap();
    let c1 = store
        .insert_connection(connection(&a.id, None, b"s1"))
        .await
        .unwrap();
    let mut other = connection(&b.id, None, b"s2");
    other.secret_key_id = "k2".into();
    let c2 = store.insert_connection(other).await.unwrap();

    let all = store.list_sealed_secrets(None).await.unwrap();
    assert_eq!(all.len(), 2);
    let not_k2 = store.list_sealed_secrets(Some("k2")).await.unwrap();
    assert_eq!(not_k2.len(), 1);
    assert_eq!(not_k2[0].row_id, c1.id.to_string());
    assert_eq!(not_k2[0].ciphertext, b"s1");
    assert_eq!(not_k2[0].location.table, "connections");

    assert!(store
        .replace_sealed_secret(&not_k2[0], b"s1-new", "k2")
        .await
        .unwrap());
    assert!(
        !store
            .replace_sealed_secret(&not_k2[0], b"s1-newer", "k2")
            .await
            .unwrap(),
        "ciphertext changed since it was read: not replaced"
    );
    let got = store.get_connection(&a.id, &c1.id).await.unwrap().unwrap();
    assert_eq!(
        (got.secret.as_slice(), got.secret_key_id.as_str()),
        (&b"s1-new"[..], "k2")
    );
    assert!(store
        .list_sealed_secrets(Some("k2"))
        .await
        .unwrap()
        .is_empty());
    let _ = c2;
}

pub async fn idempotency_keys_claim_once_replay_and_expire(store: &Store) {
    use jira_bridge_store::idempotency::Begin;
    let now = Timestamp::now();
    let later = Timestamp::from(now.as_datetime() + Duration::hours(24));
    let first = store
        .begin_idempotent("scope-a", "k1", "hash1", now, later)
        .await
        .unwrap();
    let Begin::Started(id) = first else {
        panic!("first use starts: {first:?}")
    };

    // In flight: the same key is "existing" and not completed.
    let Begin::Existing(running) = store
        .begin_idempotent("scope-a", "k1", "hash1", now, later)
        .await
        .unwrap()
    else {
        panic!("second use sees the first")
    };
    assert_eq!(running.id, id);
    assert!(running.completed_at.is_none() && running.response.is_none());

    // Another scope is independent.
    assert!(matches!(
        store
            .begin_idempotent("scope-b", "k1", "hash1", now, later)
            .await
            .unwrap(),
        Begin::Started(_)
    ));

    store
        .complete_idempotent(&id, b"sealed-response", "k9", now)
        .await
        .unwrap();
    let Begin::Existing(done) = store
        .begin_idempotent("scope-a", "k1", "other", now, later)
        .await
        .unwrap()
    else {
        panic!("completed record is returned")
    };
    assert_eq!(done.response.as_deref(), Some(&b"sealed-response"[..]));
    assert_eq!(
        done.request_hash, "hash1",
        "the first request's hash, to detect reuse"
    );

    // The sealed response is found by key rotation; in-flight rows are not.
    let sealed = store.list_sealed_secrets(None).await.unwrap();
    assert!(sealed
        .iter()
        .any(|s| s.location.table == "idempotency_keys" && s.row_id == id.as_str()));
    assert_eq!(
        sealed
            .iter()
            .filter(|s| s.location.table == "idempotency_keys")
            .count(),
        1
    );

    // Abandoning frees the key for a retry.
    let Begin::Started(id2) = store
        .begin_idempotent("scope-a", "k2", "h", now, later)
        .await
        .unwrap()
    else {
        panic!()
    };
    store.abandon_idempotent(&id2).await.unwrap();
    assert!(matches!(
        store
            .begin_idempotent("scope-a", "k2", "h", now, later)
            .await
            .unwrap(),
        Begin::Started(_)
    ));

    // Expired records are replaced, and purged.
    let past = Timestamp::from(now.as_datetime() - Duration::hours(1));
    let Begin::Started(old) = store
        .begin_idempotent("scope-a", "k3", "h", past, past)
        .await
        .unwrap()
    else {
        panic!()
    };
    let Begin::Started(fresh) = store
        .begin_idempotent("scope-a", "k3", "h", now, later)
        .await
        .unwrap()
    else {
        panic!("an expired key can be used again")
    };
    assert_ne!(old, fresh);
    store
        .begin_idempotent("scope-a", "k4", "h", past, past)
        .await
        .unwrap();
    assert_eq!(store.purge_expired_idempotency(now).await.unwrap(), 1);
}

crate::contract!(
    migrations_are_idempotent_and_complete,
    tenants_are_unique_by_name_and_paged,
    api_keys_are_found_by_hash_revoked_and_touched,
    api_keys_are_tenant_scoped,
    audit_entries_filter_and_page,
    connections_round_trip_and_are_tenant_scoped,
    connection_secret_replacement_is_compare_and_swap,
    sealed_secrets_are_listed_and_replaced_only_if_unchanged,
    idempotency_keys_claim_once_replay_and_expire,
);
