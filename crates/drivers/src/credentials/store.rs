//! The credential store on disk: `<data_dir>/credentials.json` holds one entry per
//! [`Scope`] with the username in clear and the password sealed (XChaCha20-Poly1305, see the
//! `seal` module) under the key in `<data_dir>/credentials.key`, created with mode 0600 and never
//! copied into the JSON file. The file alone therefore leaks no password; the key alone holds
//! none.
//!
//! Writes take an exclusive lock (`credentials.lock`, `flock`), read the current file, change
//! one entry and replace the file atomically (temp file, fsync, rename, fsync of the
//! directory), so concurrent writers never lose each other's entries and readers never see a
//! half-written file. A file that cannot be parsed, a missing or mismatched key file and an
//! entry that does not decrypt are clear errors naming the file or the entry; a write never
//! replaces a file it could not read.

use super::seal::{SealError, StoreKey};
use super::{CredentialSource, DeviceRef, Scope, check_login, normalise_mac};
use crate::target::{CredentialSet, Credentials};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};

/// File name of the credential file inside the data directory.
pub const FILE_NAME: &str = "credentials.json";
/// File name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "credentials.key";
/// File name of the writers' lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "credentials.lock";
/// The `format` written into the credential file.
pub const FORMAT: &str = "hashmesh-credentials/1";
/// The `cipher` written into the credential file.
pub const CIPHER: &str = "xchacha20poly1305";

/// Why the credential store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A file could not be read, written or locked.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The credential file is not one this version can read.
    #[error("{path} is not a valid credential file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The credential file holds entries but the key file is gone.
    #[error(
        "{file} holds {entries} credential(s) but its key file {key} is missing: the stored \
         passwords cannot be read (restore the key file, or remove the file and set the \
         credentials again)"
    )]
    MissingKey {
        /// The credential file.
        file: PathBuf,
        /// Where the key file should be.
        key: PathBuf,
        /// Entries that cannot be read.
        entries: usize,
    },
    /// The key file is not a key.
    #[error("key file {path} is unusable: {reason}")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: SealError,
    },
    /// The key file holds another key than the one the entries were sealed with.
    #[error(
        "key file {key} (key id {found}) does not belong to {file} (sealed with key id \
         {expected}): restore the right key file"
    )]
    WrongKey {
        /// The key file.
        key: PathBuf,
        /// The credential file.
        file: PathBuf,
        /// Key id the credential file names.
        expected: String,
        /// Key id of the key file.
        found: String,
    },
    /// An entry's password does not decrypt under the right key: the entry was altered.
    #[error(
        "credential entry {scope} in {file} cannot be decrypted ({reason}): it was altered \
         after it was written; set it again"
    )]
    Tampered {
        /// The entry's scope.
        scope: String,
        /// The credential file.
        file: PathBuf,
        /// What failed.
        reason: SealError,
    },
    /// A scope or login given by the caller is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// One entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedEntry {
    scope: String,
    username: String,
    nonce: String,
    password_sealed: String,
}

/// The whole credential file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoreFile {
    format: String,
    cipher: String,
    key_id: String,
    entries: Vec<SealedEntry>,
}

/// An entry as listed: its scope and username, never its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// What the entry applies to.
    pub scope: Scope,
    /// The login name.
    pub username: String,
}

/// What [`CredentialStore::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry.
    Added,
    /// The entry for that scope was replaced.
    Replaced,
}

/// The credential store of one data directory.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

/// Holds the writers' lock until dropped (closing the file releases `flock`).
struct WriteLock {
    _file: File,
}

impl CredentialStore {
    /// The store in `data_dir` (nothing is read or created yet).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CredentialStore {
            dir: data_dir.into(),
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the credential file.
    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Path of the key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE_NAME)
    }

    /// Whether a credential file exists (without one, devices get factory defaults only).
    pub fn exists(&self) -> bool {
        self.file_path().is_file()
    }

    /// Every entry's scope and username, in file order (no key needed, no password shown).
    pub fn list(&self) -> Result<Vec<EntryInfo>, CredentialError> {
        let Some(file) = self.read_file()? else {
            return Ok(Vec::new());
        };
        file.entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(EntryInfo {
                    scope: self.entry_scope(i, e)?,
                    username: e.username.clone(),
                })
            })
            .collect()
    }

    /// Stores `login` for `scope`, replacing an entry of the same scope. Creates the data
    /// directory, the key file (mode 0600) and the credential file when missing.
    pub fn set(&self, scope: &Scope, login: &Credentials) -> Result<Change, CredentialError> {
        check_login(login).map_err(CredentialError::Invalid)?;
        self.create_dir()?;
        let _lock = self.lock()?;
        let existing = self.read_file()?;
        let entries = existing.as_ref().map_or(0, |f| f.entries.len());
        let key = match self.read_key()? {
            Some(key) => key,
            None if entries > 0 => {
                return Err(CredentialError::MissingKey {
                    file: self.file_path(),
                    key: self.key_path(),
                    entries,
                });
            }
            None => self.create_key()?,
        };
        let mut file = match existing {
            Some(f) => {
                if entries > 0 && f.key_id != key.id() {
                    return Err(CredentialError::WrongKey {
                        key: self.key_path(),
                        file: self.file_path(),
                        expected: f.key_id,
                        found: key.id(),
                    });
                }
                f
            }
            None => StoreFile {
                format: FORMAT.into(),
                cipher: CIPHER.into(),
                key_id: String::new(),
                entries: Vec::new(),
            },
        };
        file.key_id = key.id();
        let scope_text = scope.to_string();
        let (nonce, password_sealed) = key
            .seal(&scope_text, &login.username, &login.password)
            .map_err(|reason| CredentialError::BadKeyFile {
                path: self.key_path(),
                reason,
            })?;
        let entry = SealedEntry {
            scope: scope_text,
            username: login.username.clone(),
            nonce,
            password_sealed,
        };
        let mut change = Change::Added;
        let mut slot = None;
        for (i, e) in file.entries.iter().enumerate() {
            if self.entry_scope(i, e)? == *scope {
                slot = Some(i);
            }
        }
        match slot {
            Some(i) => {
                file.entries[i] = entry;
                change = Change::Replaced;
            }
            None => file.entries.push(entry),
        }
        self.write_file(&file)?;
        Ok(change)
    }

    /// Removes the entry for `scope`; `false` when there was none. Needs no key.
    pub fn remove(&self, scope: &Scope) -> Result<bool, CredentialError> {
        if !self.exists() {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let Some(mut file) = self.read_file()? else {
            return Ok(false);
        };
        let mut keep = Vec::with_capacity(file.entries.len());
        let mut removed = false;
        for (i, e) in file.entries.iter().enumerate() {
            if self.entry_scope(i, e)? == *scope {
                removed = true;
            } else {
                keep.push(e.clone());
            }
        }
        if removed {
            file.entries = keep;
            self.write_file(&file)?;
        }
        Ok(removed)
    }

    /// Reads the key and decrypts every entry. A missing credential file gives an empty
    /// keyring; a missing or mismatched key is an error; an entry that does not decrypt is kept
    /// as a problem of that entry only ([`Keyring::lookup`] reports it for the devices it
    /// would apply to).
    pub fn unlock(&self) -> Result<Keyring, CredentialError> {
        let Some(file) = self.read_file()? else {
            return Ok(Keyring::default());
        };
        if file.entries.is_empty() {
            return Ok(Keyring::default());
        }
        let Some(key) = self.read_key()? else {
            return Err(CredentialError::MissingKey {
                file: self.file_path(),
                key: self.key_path(),
                entries: file.entries.len(),
            });
        };
        if file.key_id != key.id() {
            return Err(CredentialError::WrongKey {
                key: self.key_path(),
                file: self.file_path(),
                expected: file.key_id,
                found: key.id(),
            });
        }
        let mut entries = HashMap::with_capacity(file.entries.len());
        for (i, e) in file.entries.iter().enumerate() {
            let scope = self.entry_scope(i, e)?;
            let opened = key
                .open(&e.scope, &e.username, &e.nonce, &e.password_sealed)
                .map(|password| Credentials::new(e.username.clone(), password));
            // Writers keep one entry per scope; in a hand-edited file the last one wins.
            entries.insert(scope, opened);
        }
        Ok(Keyring {
            file: self.file_path(),
            entries,
        })
    }

    fn entry_scope(&self, index: usize, e: &SealedEntry) -> Result<Scope, CredentialError> {
        e.scope
            .parse::<Scope>()
            .map_err(|reason| CredentialError::Corrupt {
                path: self.file_path(),
                reason: format!("entry {} has a bad scope: {reason}", index + 1),
            })
    }

    fn create_dir(&self) -> Result<(), CredentialError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| CredentialError::Io {
                action: "creating data directory",
                path: self.dir.clone(),
                source,
            })
    }

    fn lock(&self) -> Result<WriteLock, CredentialError> {
        let path = self.dir.join(LOCK_FILE_NAME);
        let io = |source| CredentialError::Io {
            action: "locking",
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        loop {
            // SAFETY: flock on a descriptor this function owns for as long as the WriteLock
            // lives; it touches no memory.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(WriteLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(io(err));
            }
        }
    }

    fn read_file(&self) -> Result<Option<StoreFile>, CredentialError> {
        let path = self.file_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CredentialError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        let corrupt = |reason: String| CredentialError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: StoreFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.format != FORMAT {
            return Err(corrupt(format!(
                "format '{}' (this version reads '{FORMAT}')",
                file.format
            )));
        }
        if file.cipher != CIPHER {
            return Err(corrupt(format!(
                "cipher '{}' (this version uses '{CIPHER}')",
                file.cipher
            )));
        }
        for (i, e) in file.entries.iter().enumerate() {
            self.entry_scope(i, e)?;
        }
        Ok(Some(file))
    }

    fn read_key(&self) -> Result<Option<StoreKey>, CredentialError> {
        let path = self.key_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CredentialError::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "key file {} can be read by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        StoreKey::from_file_text(&text)
            .map(Some)
            .map_err(|reason| CredentialError::BadKeyFile { path, reason })
    }

    fn create_key(&self) -> Result<StoreKey, CredentialError> {
        let path = self.key_path();
        let key = StoreKey::generate().map_err(|reason| CredentialError::BadKeyFile {
            path: path.clone(),
            reason,
        })?;
        let io = |source| CredentialError::Io {
            action: "creating key file",
            path: path.clone(),
            source,
        };
        // create_new: an existing key is never overwritten (the caller holds the lock and
        // found none).
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        f.write_all(key.to_file_text().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        sync_dir(&self.dir);
        Ok(key)
    }

    fn write_file(&self, file: &StoreFile) -> Result<(), CredentialError> {
        let path = self.file_path();
        let mut text = serde_json::to_vec_pretty(file).map_err(|e| CredentialError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = self
            .dir
            .join(format!(".{FILE_NAME}.{}.{nanos}.tmp", std::process::id()));
        let io = |action, source| CredentialError::Io {
            action,
            path: tmp.clone(),
            source,
        };
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io("creating", e))?;
            f.write_all(&text).map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io("renaming", e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        sync_dir(&self.dir);
        Ok(())
    }
}

/// Flushes a directory's entries (a rename is durable only once its directory is synced).
/// Best effort: some filesystems refuse to sync directories, and the rename already happened.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The decrypted logins of a store, ready for lookups (by scope, so a lookup costs the same
/// with ten entries or a hundred thousand).
#[derive(Debug, Default)]
pub struct Keyring {
    file: PathBuf,
    entries: HashMap<Scope, Result<Credentials, SealError>>,
}

impl Keyring {
    /// Number of entries (readable or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store held no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries that did not decrypt, each as the error that names it.
    pub fn problems(&self) -> Vec<CredentialError> {
        let mut bad: Vec<(&Scope, &SealError)> = self
            .entries
            .iter()
            .filter_map(|(scope, r)| r.as_ref().err().map(|e| (scope, e)))
            .collect();
        bad.sort_by(|a, b| a.0.cmp(b.0));
        bad.into_iter().map(|(s, e)| self.tampered(s, e)).collect()
    }

    /// Whether the entry for `scope` decrypted (`None`: no such entry).
    pub fn readable(&self, scope: &Scope) -> Option<bool> {
        self.entry(scope).map(Result::is_ok)
    }

    fn tampered(&self, scope: &Scope, reason: &SealError) -> CredentialError {
        CredentialError::Tampered {
            scope: scope.to_string(),
            file: self.file.clone(),
            reason: reason.clone(),
        }
    }

    fn entry(&self, scope: &Scope) -> Option<&Result<Credentials, SealError>> {
        self.entries.get(scope)
    }

    /// The scopes that apply to `device`, in the order their logins are tried: its MAC, its
    /// IP, each of its groups in the order given, its family.
    pub fn scopes_for(device: &DeviceRef<'_>) -> Vec<Scope> {
        let mut scopes = Vec::with_capacity(3 + device.groups.len());
        if let Some(mac) = device.mac.and_then(normalise_mac) {
            scopes.push(Scope::DeviceMac(mac));
        }
        scopes.push(Scope::DeviceIp(device.ip));
        scopes.extend(
            device
                .groups
                .iter()
                .map(|g| Scope::Group(g.trim().to_owned())),
        );
        scopes.push(Scope::Family(device.family.trim().to_ascii_lowercase()));
        scopes
    }

    /// The logins of `device`, best first; an entry that applies but does not decrypt is an
    /// error naming it (entries for other devices do not matter).
    pub fn lookup(&self, device: &DeviceRef<'_>) -> Result<CredentialSet, CredentialError> {
        let mut set = CredentialSet::default();
        for scope in Self::scopes_for(device) {
            match self.entry(&scope) {
                Some(Ok(login)) => set.push(login.clone()),
                Some(Err(e)) => return Err(self.tampered(&scope, e)),
                None => {}
            }
        }
        Ok(set)
    }

    /// Like [`lookup`](Self::lookup), but an entry that does not decrypt is skipped with a
    /// warning, so one bad entry cannot stop a whole scan.
    pub fn lookup_lenient(&self, device: &DeviceRef<'_>) -> CredentialSet {
        let mut set = CredentialSet::default();
        for scope in Self::scopes_for(device) {
            match self.entry(&scope) {
                Some(Ok(login)) => set.push(login.clone()),
                Some(Err(e)) => tracing::warn!("{}", self.tampered(&scope, e)),
                None => {}
            }
        }
        set
    }
}

impl CredentialSource for Keyring {
    fn credentials_for(&self, device: &DeviceRef<'_>) -> CredentialSet {
        self.lookup_lenient(device)
    }
}
