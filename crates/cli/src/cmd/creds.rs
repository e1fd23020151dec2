//! `hashmesh creds set|list|remove`: the logins hashmesh uses for devices that need one, kept in
//! the credential store of the data directory (`credentials.json` with passwords sealed under
//! the key in `credentials.key`; see `hashmesh_drivers::credentials`).
//!
//! A password is never a flag value (it would land in shell history and `ps`): `set` reads it
//! from standard input with `--password-stdin`, or prompts twice without echo on a terminal.
//! `list` shows scopes and usernames only. `miner` and `scan` read the same store through
//! [`DataDirArg`] and [`open_keyring`].

use crate::output::Table;
use anyhow::{Context, bail};
use hashmesh_drivers::Credentials;
use hashmesh_drivers::credentials::{Change, CredentialStore, Keyring, MAX_PASSWORD_BYTES, Scope};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

/// The data directory option every subcommand that uses the credential store takes.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDirArg {
    /// Directory of hashmesh's state (the credential store: credentials.json and its key file
    /// credentials.key).
    #[arg(long, env = "HASHMESH_DATA_DIR", default_value = "./hashmesh-data")]
    pub data_dir: PathBuf,
}

/// Options of `hashmesh creds`.
#[derive(clap::Args)]
pub struct CredsArgs {
    #[command(subcommand)]
    action: CredsAction,
}

#[derive(clap::Subcommand)]
enum CredsAction {
    /// Store the login of a device, a group or a family (replacing that scope's login).
    Set {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Login name.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (its first line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// List the stored logins: scopes and usernames, never passwords.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Remove the login of one scope (as `list` prints it: device:10.0.0.5, group:site=A,
    /// family:antminer).
    Remove {
        /// The scope.
        scope: String,
        #[command(flatten)]
        data: DataDirArg,
    },
}

/// Exactly one scope for `set`.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct ScopeArgs {
    /// One device, by IP or MAC address (tried first).
    #[arg(long, value_name = "IP|MAC")]
    device: Option<String>,
    /// Every device of a group, e.g. site=A or rack=A/C01/R03 (tried after the device's own).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Every device of a family without a closer entry: antminer, braiins or whatsminer.
    #[arg(long, value_name = "FAMILY")]
    family: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope, String> {
        match (&self.device, &self.group, &self.family) {
            (Some(d), _, _) => Scope::device(d),
            (_, Some(g), _) => Scope::group(g),
            (_, _, Some(f)) => Scope::family(f),
            _ => Err("give --device, --group or --family".into()),
        }
    }
}

/// Runs the creds subcommand.
pub async fn run(args: CredsArgs) -> anyhow::Result<()> {
    match args.action {
        CredsAction::Set {
            scope,
            username,
            password_stdin,
            data,
        } => {
            let scope = scope.scope().map_err(anyhow::Error::msg)?;
            let password = read_password(password_stdin)?;
            set(&data.data_dir, &scope, Credentials::new(username, password))
        }
        CredsAction::List { json, data } => list(&data.data_dir, json),
        CredsAction::Remove { scope, data } => {
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let store = CredentialStore::new(&data.data_dir);
            if !store
                .remove(&scope)
                .with_context(|| format!("removing {scope}"))?
            {
                bail!(
                    "no login stored for {scope} in {}",
                    store.file_path().display()
                );
            }
            println!("removed {scope}");
            Ok(())
        }
    }
}

fn set(data_dir: &Path, scope: &Scope, login: Credentials) -> anyhow::Result<()> {
    let store = CredentialStore::new(data_dir);
    let had_key = store.key_path().exists();
    let change = store
        .set(scope, &login)
        .with_context(|| format!("storing the login for {scope}"))?;
    let what = match change {
        Change::Added => "added",
        Change::Replaced => "replaced",
    };
    println!("{what} {scope} (user {})", login.username);
    if !had_key {
        eprintln!(
            "created key file {}: keep it with the data directory and out of backups of the \
             configuration; without it the stored passwords cannot be read",
            store.key_path().display()
        );
    }
    Ok(())
}

fn list(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let store = CredentialStore::new(data_dir);
    let entries = store.list().context("listing the credential store")?;
    // Listing needs no key; when the key is there, say which entries it can read.
    let keyring = match store.unlock() {
        Ok(keyring) => Some(keyring),
        Err(e) => {
            if !entries.is_empty() {
                eprintln!("warning: {e}");
            }
            None
        }
    };
    let readable = |s: &Scope| keyring.as_ref().and_then(|k| k.readable(s));
    if json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "scope": e.scope.to_string(),
                    "kind": e.scope.kind(),
                    "value": e.scope.value(),
                    "username": e.username,
                    "readable": readable(&e.scope),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let mut t = Table::new(&["SCOPE", "USER", "STATE"]);
    for e in &entries {
        let state = match readable(&e.scope) {
            Some(true) => "ok",
            Some(false) => "altered: set it again",
            None => "key unavailable",
        };
        t.row(vec![e.scope.to_string(), e.username.clone(), state.into()]);
    }
    print!("{}", t.render());
    eprintln!(
        "{} login(s) in {}; devices try their own, then their groups', then their family's, \
         then the vendor's factory logins",
        entries.len(),
        store.file_path().display()
    );
    Ok(())
}

/// Reads the password: the first line of standard input with `--password-stdin`, else a
/// prompt without echo (twice, to catch typos) when standard input is a terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut raw = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_BYTES as u64 + 3)
            .read_to_end(&mut raw)
            .context("reading the password from standard input")?;
        let text = String::from_utf8(raw).context("the password is not UTF-8")?;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            bail!("standard input holds more than one line: give the password alone");
        }
        return Ok(line.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: pass --password-stdin to read it from standard input, or run on a \
             terminal to be prompted"
        );
    }
    let first = rpassword::prompt_password("password: ").context("reading the password")?;
    let again = rpassword::prompt_password("again: ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// The unlocked credential store of `data_dir`, or `None` when it has none (devices then get
/// their factory logins only). Entries that do not decrypt are reported as warnings here and
/// as errors for the devices they apply to.
pub fn open_keyring(data_dir: &Path) -> anyhow::Result<Option<Keyring>> {
    let store = CredentialStore::new(data_dir);
    if !store.exists() {
        return Ok(None);
    }
    let keyring = store.unlock().with_context(|| {
        format!(
            "opening the credential store in {} (see `hashmesh creds list`)",
            data_dir.display()
        )
    })?;
    for problem in keyring.problems() {
        eprintln!("warning: {problem}");
    }
    Ok(Some(keyring))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use hashmesh_drivers::credentials::CredentialError;

    /// Whether `e` is one of the store's errors.
    fn is_store_error(e: &anyhow::Error) -> bool {
        e.chain()
            .any(|c| c.downcast_ref::<CredentialError>().is_some())
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        creds: CredsArgs,
    }

    #[test]
    fn exactly_one_scope_and_no_password_flag() {
        let ok = Cli::try_parse_from(["t", "set", "--group", "site=A", "--username", "root"]);
        assert!(ok.is_ok());
        for bad in [
            vec!["t", "set", "--username", "root"],
            vec![
                "t",
                "set",
                "--device",
                "10.0.0.1",
                "--family",
                "antminer",
                "--username",
                "u",
            ],
            vec![
                "t",
                "set",
                "--device",
                "10.0.0.1",
                "--username",
                "u",
                "--password",
                "p",
            ],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_key_is_a_store_error() {
        let dir = std::env::temp_dir().join(format!("hashmesh-creds-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::new(&dir);
        let scope = Scope::family("antminer").unwrap_or_else(|e| panic!("{e}"));
        store
            .set(&scope, &Credentials::new("root", "pw"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(open_keyring(&dir).is_ok_and(|k| k.is_some()));
        std::fs::remove_file(store.key_path()).unwrap_or_else(|e| panic!("{e}"));
        let err = open_keyring(&dir)
            .err()
            .unwrap_or_else(|| panic!("no error"));
        assert!(is_store_error(&err), "{err:#}");
        assert!(format!("{err:#}").contains("credentials.key"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(open_keyring(&dir).is_ok_and(|k| k.is_none()));
    }
}
