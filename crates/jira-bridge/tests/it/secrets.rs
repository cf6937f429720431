//! Sealed secrets end to end: what reaches the database, tampering, moving,
//! rotation.

use jira_bridge::crypto::{self, KeyRing, SealContext};
use jira_bridge_store::connections::NewConnection;
use jira_bridge_store::{ConnectionId, Store, TenantId};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::TestApp;

fn ctx(id: &ConnectionId) -> SealContext<'_> {
    SealContext {
        table: "connections",
        row_id: id.as_str(),
        column: "secret",
    }
}

async fn store_token(
    store: &Store,
    ring: &KeyRing,
    tenant: &TenantId,
    token: &str,
) -> ConnectionId {
    let id = ConnectionId::new();
    let sealed = ring
        .seal_str(&SecretString::from(token.to_owned()), ctx(&id))
        .unwrap();
    store
        .insert_connection(NewConnection {
            id: id.clone(),
            tenant_id: tenant.clone(),
            kind: "dc_pat".into(),
            owner: None,
            name: "DC".into(),
            base_url: "https://jira.example.com".into(),
            cloud_id: None,
            site_name: None,
            account_id: None,
            secret: sealed.ciphertext,
            secret_key_id: sealed.key_id,
            scopes: vec![],
            token_expires_at: None,
            verification_status: "valid".into(),
            last_verified_at: None,
            email: None,
            account_name: None,
            deployment: None,
            server_version: None,
        })
        .await
        .unwrap();
    id
}

fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle),
        Err(_) => false,
    }
}

#[tokio::test]
async fn no_plaintext_token_or_api_key_reaches_the_sqlite_file() {
    let app = TestApp::builder().sqlite().spawn().await;
    let t = app.create_tenant("acme").await;
    let tenant: TenantId = t.id.parse().unwrap();
    let store = app.store().await;
    let (ring, _) = crypto::load_key_ring(&app.config).unwrap();
    let token = "ATATT3xFfGF0-very-secret-jira-token-4711";
    let id = store_token(&store, &ring, &tenant, token).await;

    let db_file = crypto::sqlite_path(app.db.url()).unwrap();
    let wal = db_file.with_extension("db-wal");
    for needle in [token.as_bytes(), t.key.as_bytes(), &t.key.as_bytes()[4..]] {
        assert!(
            !file_contains(&db_file, needle),
            "plaintext in the database file"
        );
        assert!(!file_contains(&wal, needle), "plaintext in the WAL");
    }
    // The test can find what it looks for: the sealed row and the key hash are there.
    let row = store.get_connection(&tenant, &id).await.unwrap().unwrap();
    assert!(
        file_contains(&db_file, id.as_str().as_bytes())
            || file_contains(&wal, id.as_str().as_bytes()),
        "the row was written"
    );
    assert_eq!(
        ring.open_str(&row.secret, ctx(&id))
            .unwrap()
            .expose_secret(),
        token
    );
    store.close().await;
    app.stop().await;
}

#[tokio::test]
async fn tampered_or_moved_ciphertexts_fail_to_open() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("acme").await;
    let tenant: TenantId = t.id.parse().unwrap();
    let store = app.store().await;
    let (ring, _) = crypto::load_key_ring(&app.config).unwrap();
    let a = store_token(&store, &ring, &tenant, "token-a").await;
    let b = store_token(&store, &ring, &tenant, "token-b").await;

    // Tamper with A's stored ciphertext.
    let row_a = store.get_connection(&tenant, &a).await.unwrap().unwrap();
    let mut tampered = row_a.secret.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    let row_a = store
        .replace_connection_secret(
            &tenant,
            &a,
            row_a.token_version,
            &tampered,
            &row_a.secret_key_id,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        ring.open(&row_a.secret, ctx(&a)),
        Err(crypto::CryptoError::Authentication)
    ));

    // Move B's intact ciphertext into row A: it does not open there ...
    let row_b = store.get_connection(&tenant, &b).await.unwrap().unwrap();
    let moved = store
        .replace_connection_secret(
            &tenant,
            &a,
            row_a.token_version,
            &row_b.secret,
            &row_b.secret_key_id,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        ring.open(&moved.secret, ctx(&a)),
        Err(crypto::CryptoError::Authentication)
    ));
    // ... while it still opens in its own row.
    assert_eq!(&*ring.open(&row_b.secret, ctx(&b)).unwrap(), b"token-b");
    store.close().await;
    app.stop().await;
}

#[tokio::test]
async fn rotation_with_configured_keys_keeps_every_secret_readable() {
    let old = crypto::generate_key();
    let app = TestApp::builder()
        .env("JIRA_BRIDGE_MASTER_KEY", old.expose_secret())
        .spawn()
        .await;
    let store = app.store().await;
    let (old_ring, _) = crypto::load_key_ring(&app.config).unwrap();
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let t = app.create_tenant(name).await;
        let tenant: TenantId = t.id.parse().unwrap();
        for i in 0..3 {
            let id = store_token(&store, &old_ring, &tenant, &format!("token-{name}-{i}")).await;
            ids.push((tenant.clone(), id, format!("token-{name}-{i}")));
        }
    }

    // New key current, old key kept for opening.
    let new = crypto::generate_key();
    let mut env = app.env.clone();
    env.insert(
        "JIRA_BRIDGE_MASTER_KEY".into(),
        new.expose_secret().to_owned(),
    );
    env.insert(
        "JIRA_BRIDGE_PREVIOUS_MASTER_KEYS".into(),
        old.expose_secret().to_owned(),
    );
    let rotated_config = jira_bridge::Config::load_with_env(None, &env)
        .unwrap()
        .config;
    let (ring, _) = crypto::load_key_ring(&rotated_config).unwrap();
    assert_ne!(ring.current_key_id(), old_ring.current_key_id());

    let report = crypto::reseal_all(&store, &ring).await.unwrap();
    assert_eq!(report.resealed, 6);
    let again = crypto::reseal_all(&store, &ring).await.unwrap();
    assert_eq!(
        (again.resealed, again.already_current),
        (0, 6),
        "idempotent"
    );

    let new_only = KeyRing::from_keys([new.expose_secret()]).unwrap();
    for (tenant, id, token) in &ids {
        let row = store.get_connection(tenant, id).await.unwrap().unwrap();
        assert_eq!(row.secret_key_id, ring.current_key_id());
        assert_eq!(
            KeyRing::key_id_of(&row.secret).unwrap(),
            ring.current_key_id()
        );
        assert_eq!(
            new_only
                .open_str(&row.secret, ctx(id))
                .unwrap()
                .expose_secret(),
            token
        );
        assert!(
            old_ring.open(&row.secret, ctx(id)).is_err(),
            "old key alone no longer opens it"
        );
    }
    store.close().await;
    app.stop().await;
}
