//! The secret box: AES-256-GCM with a key ring.
//!
//! A sealed value is `[1][n][key id: n bytes][nonce: 12 bytes][ciphertext + tag]`.
//! The key id says which key of the ring opens it, so keys can be rotated without a
//! flag day. The additional authenticated data binds the value to where it is stored
//! (`table`, row id, `column`) and to its header: a ciphertext copied into another row
//! or column, or altered by one bit, fails to open.
//!
//! Key ids are derived from the key (`k` + 8 hex digits of a SHA-256), so every
//! replica configured with the same key agrees on the id.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jira_bridge_store::secrets::SealedSecret;
use jira_bridge_store::Store;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox as Secret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::Config;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Errors of sealing, opening and key handling. Never contains secret material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The value is not a sealed value of a known format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Sealed under a key that is not in the ring.
    #[error("sealed under key {0}, which is not configured (add it to JIRA_BRIDGE_PREVIOUS_MASTER_KEYS)")]
    UnknownKey(String),
    /// Authentication failed: tampered, moved to another row, or wrong key.
    #[error("sealed value failed authentication (tampered or moved)")]
    Authentication,
    /// Key material is unusable.
    #[error("{0}")]
    Key(String),
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Re-sealing stored secrets failed.
    #[error("store: {0}")]
    Store(#[from] jira_bridge_store::StoreError),
}

/// Where a sealed value lives; bound into its authentication.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Table name.
    pub table: &'a str,
    /// Row id.
    pub row_id: &'a str,
    /// Column name.
    pub column: &'a str,
}

impl SealContext<'_> {
    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + header.len());
        aad.extend_from_slice(b"jira-bridge/seal/v1\0");
        for part in [self.table, self.row_id, self.column] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad.extend_from_slice(header);
        aad
    }
}

/// A sealed value and the key id it is sealed under.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the sealing key.
    pub key_id: String,
    /// The bytes to store.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed({}, {} bytes)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The keys that can open secrets; the first seals new ones. `Debug` shows ids only.
pub struct KeyRing {
    keys: Vec<MasterKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

/// Decode a base64 master key (32 bytes).
pub fn parse_key(text: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
        CryptoError::Key(
            "not valid base64; a master key is 32 random bytes in base64, e.g. from `openssl rand -base64 32`".into(),
        )
    })?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(CryptoError::Key(format!(
            "decodes to {} bytes, but a master key is exactly 32 bytes; generate one with `openssl rand -base64 32`",
            bytes.len()
        )));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// A new random master key, base64.
pub fn generate_key() -> SecretString {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    SecretString::from(STANDARD.encode(key.as_ref()))
}

fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(b"jira-bridge key id\0")
        .chain_update(key)
        .finalize();
    format!("k{}", hex::encode(&digest[..4]))
}

impl KeyRing {
    /// From base64 keys, current first.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Self, CryptoError> {
        let mut ring = Vec::new();
        for text in keys {
            let key = parse_key(text)?;
            let id = key_id(&key);
            if ring.iter().any(|k: &MasterKey| k.id == id) {
                continue;
            }
            let cipher = Aes256Gcm::new_from_slice(key.as_ref())
                .map_err(|_| CryptoError::Key("key length".into()))?;
            ring.push(MasterKey { id, cipher });
        }
        if ring.is_empty() {
            return Err(CryptoError::Key("no master key".into()));
        }
        Ok(Self { keys: ring })
    }

    /// Id of the key that seals.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Ids of all keys.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seal `plaintext` for the place `ctx`.
    pub fn seal(&self, plaintext: &[u8], ctx: SealContext<'_>) -> Result<Sealed, CryptoError> {
        let key = &self.keys[0];
        let mut header = vec![VERSION, key.id.len() as u8];
        header.extend_from_slice(key.id.as_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = ctx.aad(&header);
        let ct = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let mut out = header;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(Sealed {
            key_id: key.id.clone(),
            ciphertext: out,
        })
    }

    /// The key id a sealed value names, without opening it.
    pub fn key_id_of(sealed: &[u8]) -> Result<&str, CryptoError> {
        let (id, _, _) = split(sealed)?;
        Ok(id)
    }

    /// Open a sealed value stored at `ctx`.
    pub fn open(
        &self,
        sealed: &[u8],
        ctx: SealContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (id, header_len, _) = split(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let header = &sealed[..header_len];
        let nonce = &sealed[header_len..header_len + NONCE_LEN];
        let ct = &sealed[header_len + NONCE_LEN..];
        let aad = ctx.aad(header);
        key.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Authentication)
    }

    /// Seal a string secret.
    pub fn seal_str(
        &self,
        secret: &SecretString,
        ctx: SealContext<'_>,
    ) -> Result<Sealed, CryptoError> {
        self.seal(secret.expose_secret().as_bytes(), ctx)
    }

    /// Open a string secret.
    pub fn open_str(
        &self,
        sealed: &[u8],
        ctx: SealContext<'_>,
    ) -> Result<SecretString, CryptoError> {
        let bytes = self.open(sealed, ctx)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CryptoError::Malformed)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Open raw bytes into a secret box.
    pub fn open_secret(
        &self,
        sealed: &[u8],
        ctx: SealContext<'_>,
    ) -> Result<Secret<Vec<u8>>, CryptoError> {
        let bytes = self.open(sealed, ctx)?;
        Ok(Secret::new(Box::new(bytes.to_vec())))
    }
}

fn split(sealed: &[u8]) -> Result<(&str, usize, usize), CryptoError> {
    if sealed.len() < 2 || sealed[0] != VERSION {
        return Err(CryptoError::Malformed);
    }
    let n = sealed[1] as usize;
    let header_len = 2 + n;
    if sealed.len() < header_len + NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let id = std::str::from_utf8(&sealed[2..header_len]).map_err(|_| CryptoError::Malformed)?;
    Ok((id, header_len, n))
}

/// Where the master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `crypto.master_key` / `JIRA_BRIDGE_MASTER_KEY`.
    Configured,
    /// A key ring file (configured or generated earlier).
    File(PathBuf),
    /// A key ring file generated just now.
    Generated(PathBuf),
}

/// The SQLite database file a URL names, if any.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Path of the generated key file for a configuration using SQLite: beside the
/// database file.
pub fn default_key_file(config: &Config) -> Option<PathBuf> {
    let url = config.database_url();
    let db = sqlite_path(url.expose_secret())?;
    let dir = db
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Some(dir.join("master.key"))
}

/// Load the key ring the configuration names, generating a key file beside the
/// SQLite database when no key is configured.
pub fn load_key_ring(config: &Config) -> Result<(KeyRing, KeySource), CryptoError> {
    let previous: Vec<&str> = config
        .crypto
        .previous_master_keys
        .iter()
        .map(|k| k.expose_secret())
        .collect();
    if let Some(key) = &config.crypto.master_key {
        let keys = std::iter::once(key.expose_secret()).chain(previous.iter().copied());
        return Ok((KeyRing::from_keys(keys)?, KeySource::Configured));
    }
    if let Some(path) = &config.crypto.master_key_file {
        let ring = read_key_file(path, &previous)?;
        return Ok((ring, KeySource::File(path.clone())));
    }
    let Some(path) = default_key_file(config) else {
        return Err(CryptoError::Key(
            "no master key configured: set JIRA_BRIDGE_MASTER_KEY (or JIRA_BRIDGE_MASTER_KEY_FILE) to 32 random bytes in base64 (`openssl rand -base64 32`); every replica needs the same key".into(),
        ));
    };
    if path.exists() {
        let ring = read_key_file(&path, &previous)?;
        return Ok((ring, KeySource::File(path)));
    }
    let key = generate_key();
    write_key_file(&path, &[key.expose_secret()], true)?;
    let ring = read_key_file(&path, &previous)?;
    Ok((ring, KeySource::Generated(path)))
}

fn read_key_file(path: &Path, previous: &[&str]) -> Result<KeyRing, CryptoError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFile {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    KeyRing::from_keys(lines.chain(previous.iter().copied())).map_err(|e| match e {
        CryptoError::Key(msg) => CryptoError::Key(format!("key file {}: {msg}", path.display())),
        e => e,
    })
}

/// Write a key ring file with mode 0600 (atomically: temp file, then rename).
fn write_key_file(path: &Path, keys: &[&str], create_new: bool) -> Result<(), CryptoError> {
    let err = |source| CryptoError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut body = Zeroizing::new(String::from(
        "# jira-bridge master key ring: base64 keys, one per line; the first seals new secrets.\n# Keep this file secret and backed up: without it, stored Jira credentials cannot be read.\n",
    ));
    for k in keys {
        body.push_str(k);
        body.push('\n');
    }
    let tmp = path.with_extension("key.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    if create_new && path.exists() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "refusing to overwrite an existing key file",
        )));
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(body.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

/// Put a new key at the head of a key ring file, keeping the old keys for opening.
/// Returns the reloaded ring.
pub fn add_key_to_file(path: &Path, previous: &[&str]) -> Result<KeyRing, CryptoError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFile {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let new = generate_key();
    let mut keys: Vec<&str> = vec![new.expose_secret()];
    keys.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#')),
    );
    write_key_file(path, &keys, false)?;
    read_key_file(path, previous)
}

/// Outcome of [`reseal_all`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Secrets re-sealed under the current key.
    pub resealed: usize,
    /// Secrets already under the current key when they were looked at.
    pub already_current: usize,
}

/// Re-seal every stored secret that is not under the ring's current key. A secret
/// changed concurrently (token refresh) is re-read and tried again.
pub async fn reseal_all(store: &Store, ring: &KeyRing) -> Result<ResealReport, CryptoError> {
    let current = ring.current_key_id().to_owned();
    let mut report = ResealReport {
        already_current: store.list_sealed_secrets(None).await?.len()
            - store.list_sealed_secrets(Some(&current)).await?.len(),
        ..ResealReport::default()
    };
    for _round in 0..10 {
        let pending: Vec<SealedSecret> = store.list_sealed_secrets(Some(&current)).await?;
        if pending.is_empty() {
            return Ok(report);
        }
        for s in pending {
            let ctx = SealContext {
                table: s.location.table,
                row_id: &s.row_id,
                column: s.location.column,
            };
            let plain = ring.open(&s.ciphertext, ctx)?;
            let new = ring.seal(&plain, ctx)?;
            if store
                .replace_sealed_secret(&s, &new.ciphertext, &new.key_id)
                .await?
            {
                report.resealed += 1;
            }
        }
    }
    Err(CryptoError::Key(
        "secrets kept changing while re-sealing; run rotate-key again".into(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CTX: SealContext<'static> = SealContext {
        table: "connections",
        row_id: "con_1",
        column: "secret",
    };

    fn ring() -> (KeyRing, SecretString) {
        let k = generate_key();
        (KeyRing::from_keys([k.expose_secret()]).unwrap(), k)
    }

    #[test]
    fn seal_open_round_trip_and_key_id_in_ciphertext() {
        let (r, _) = ring();
        let s = r.seal(b"token-123", CTX).unwrap();
        assert_eq!(
            KeyRing::key_id_of(&s.ciphertext).unwrap(),
            r.current_key_id()
        );
        assert!(!s.ciphertext.windows(9).any(|w| w == b"token-123"));
        assert_eq!(&*r.open(&s.ciphertext, CTX).unwrap(), b"token-123");
        let again = r.seal(b"token-123", CTX).unwrap();
        assert_ne!(again.ciphertext, s.ciphertext, "fresh nonce each time");
    }

    #[test]
    fn tampering_or_moving_fails() {
        let (r, _) = ring();
        let s = r.seal(b"token-123", CTX).unwrap();
        for i in 0..s.ciphertext.len() {
            let mut t = s.ciphertext.clone();
            t[i] ^= 0x01;
            assert!(r.open(&t, CTX).is_err(), "bit flip at {i} must fail");
        }
        for other in [
            SealContext {
                row_id: "con_2",
                ..CTX
            },
            SealContext {
                table: "links",
                ..CTX
            },
            SealContext {
                column: "refresh",
                ..CTX
            },
        ] {
            assert!(matches!(
                r.open(&s.ciphertext, other),
                Err(CryptoError::Authentication)
            ));
        }
        assert!(matches!(
            r.open(&s.ciphertext[..10], CTX),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn rings_open_old_keys_and_reject_unknown_ones() {
        let (old, old_key) = ring();
        let sealed = old.seal(b"x", CTX).unwrap();
        let new_key = generate_key();
        let both = KeyRing::from_keys([new_key.expose_secret(), old_key.expose_secret()]).unwrap();
        assert_ne!(both.current_key_id(), old.current_key_id());
        assert_eq!(&*both.open(&sealed.ciphertext, CTX).unwrap(), b"x");
        let only_new = KeyRing::from_keys([new_key.expose_secret()]).unwrap();
        assert!(matches!(
            only_new.open(&sealed.ciphertext, CTX),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(format!("{both:?}").contains(both.current_key_id()));
        assert!(!format!("{both:?}").contains(new_key.expose_secret()));
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(parse_key("!!")
            .unwrap_err()
            .to_string()
            .contains("openssl rand -base64 32"));
        assert!(parse_key(&STANDARD.encode([0u8; 16]))
            .unwrap_err()
            .to_string()
            .contains("16 bytes"));
    }

    #[test]
    fn key_file_is_generated_private_and_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let k = generate_key();
        write_key_file(&path, &[k.expose_secret()], true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let r1 = read_key_file(&path, &[]).unwrap();
        let r2 = add_key_to_file(&path, &[]).unwrap();
        assert_eq!(r2.key_ids().len(), 2);
        assert_eq!(r2.key_ids()[1], r1.current_key_id());
        assert!(
            write_key_file(&path, &[k.expose_secret()], true).is_err(),
            "never overwrites"
        );
    }

    #[test]
    fn postgres_without_a_key_is_refused_and_sqlite_generates_one_beside_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let env = |url: &str| {
            std::collections::BTreeMap::from([
                ("JIRA_BRIDGE_DATABASE_URL".to_owned(), url.to_owned()),
                (
                    "JIRA_BRIDGE_DATA_DIR".to_owned(),
                    dir.path().join("unused").display().to_string(),
                ),
            ])
        };
        let pg = Config::load_with_env(None, &env("postgres://db.example/jb"))
            .unwrap()
            .config;
        let err = load_key_ring(&pg).unwrap_err().to_string();
        assert!(err.contains("JIRA_BRIDGE_MASTER_KEY"), "{err}");

        let db = dir.path().join("elsewhere").join("x.db");
        let sqlite = Config::load_with_env(None, &env(&format!("sqlite:{}", db.display())))
            .unwrap()
            .config;
        let (ring, source) = load_key_ring(&sqlite).unwrap();
        let key_file = dir.path().join("elsewhere").join("master.key");
        assert_eq!(source, KeySource::Generated(key_file.clone()));
        let (again, source) = load_key_ring(&sqlite).unwrap();
        assert_eq!(source, KeySource::File(key_file));
        assert_eq!(
            again.current_key_id(),
            ring.current_key_id(),
            "the same key on restart"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:data/x.db"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
