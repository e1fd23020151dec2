//! `hashmesh user`: the node's users and API tokens from the command line: add, list, change a
//! password, make or revoke a token. Works on `<data-dir>/auth.sqlite` directly, so it runs
//! beside a live node (and is how the first admin is made). Passwords are read without echo
//! from the terminal, or from stdin with `--password-stdin`; they never appear in arguments.

use crate::output::Table;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hashmesh_node::auth::store::User;
use hashmesh_node::auth::{AuthStore, Clock, Role};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// Arguments of `hashmesh user`.
#[derive(Args, Debug)]
pub struct UserArgs {
    /// The node's data directory.
    #[arg(
        long,
        env = "HASHMESH_DATA_DIR",
        default_value = "hashmesh-data",
        global = true
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Creates a user.
    Add {
        /// The login name: letters, digits and . _ - @.
        name: String,
        /// What the user may do: viewer (reads), operator (reads, device commands) or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from stdin (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user, with role and state (never the password hash).
    List {
        /// One JSON object per user per line.
        #[arg(long)]
        json: bool,
    },
    /// Sets a user's password (their other sessions end).
    Passwd {
        /// The login name.
        name: String,
        /// Read the password from stdin (one line) instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Makes an API token for a user (`--name`), revokes one (`--revoke`), or lists the
    /// user's tokens (neither).
    Token {
        /// The login name.
        user: String,
        /// A label for the new token; the token is printed once, on stdout.
        #[arg(long = "name", conflicts_with = "revoke")]
        label: Option<String>,
        /// The new token's role (default: the user's role; never higher).
        #[arg(long, value_parser = parse_role, requires = "label")]
        role: Option<Role>,
        /// Revokes the token with this id.
        #[arg(long)]
        revoke: Option<i64>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: hashmesh_node::auth::role::UnknownRole| e.to_string())
}

/// Runs `hashmesh user`.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let now = Clock::System.now_unix_ms();
    match args.action {
        Action::Add {
            name,
            role,
            password_stdin,
        } => {
            let store = AuthStore::open_in(&args.data_dir).with_context(|| {
                format!("opening the auth database in {}", args.data_dir.display())
            })?;
            let password = read_new_password(&name, password_stdin)?;
            let user = store.add_user(&name, &password, role, now)?;
            eprintln!("added {} ({})", user.username, user.role);
        }
        Action::List { json } => {
            let users = open_existing(&args.data_dir)?.list_users()?;
            if json {
                for user in &users {
                    println!("{}", serde_json::to_string(user)?);
                }
            } else {
                print!("{}", users_table(&users));
                eprintln!(
                    "{} user{}",
                    users.len(),
                    if users.len() == 1 { "" } else { "s" }
                );
            }
        }
        Action::Passwd {
            name,
            password_stdin,
        } => {
            let store = open_existing(&args.data_dir)?;
            if store.user(&name)?.is_none() {
                bail!("no user '{name}'");
            }
            let password = read_new_password(&name, password_stdin)?;
            let change = hashmesh_node::auth::store::UserChange {
                password: Some(password),
                ..Default::default()
            };
            let user = store.update_user(&name, change)?;
            eprintln!(
                "password of {} changed; their sessions have ended",
                user.username
            );
        }
        Action::Token {
            user,
            label,
            role,
            revoke,
        } => {
            let store = open_existing(&args.data_dir)?;
            if let Some(id) = revoke {
                store.revoke_token(id, Some(&user), now)?;
                eprintln!("token {id} of {user} revoked");
            } else if let Some(label) = label {
                let (info, token) = store.create_token(&user, &label, role, now)?;
                eprintln!(
                    "token {} '{}' for {} ({}); it is shown only this once:",
                    info.id, info.name, info.username, info.role
                );
                println!("{token}");
            } else {
                if store.user(&user)?.is_none() {
                    bail!("no user '{user}'");
                }
                let tokens = store.list_tokens(Some(&user))?;
                let mut table =
                    Table::new(&[">ID", "NAME", "ROLE", "CREATED", "LAST USED", "STATE"]);
                for t in &tokens {
                    table.row(vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.role.to_string(),
                        utc(t.created_unix_ms),
                        t.last_used_unix_ms.map_or_else(|| "never".into(), utc),
                        t.revoked_unix_ms
                            .map_or_else(|| "active".into(), |at| format!("revoked {}", utc(at))),
                    ]);
                }
                print!("{}", table.render());
                eprintln!(
                    "{} token{}",
                    tokens.len(),
                    if tokens.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(())
}

fn open_existing(data_dir: &std::path::Path) -> anyhow::Result<AuthStore> {
    AuthStore::open_existing_in(data_dir).with_context(|| {
        format!(
            "no users in {}: add the first with `hashmesh user add <name> --role admin --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        )
    })
}

fn users_table(users: &[User]) -> String {
    let mut table = Table::new(&["USERNAME", "ROLE", "STATE", "CREATED"]);
    for u in users {
        table.row(vec![
            u.username.clone(),
            u.role.to_string(),
            if u.disabled { "disabled" } else { "enabled" }.into(),
            utc(u.created_unix_ms),
        ]);
    }
    table.render()
}

/// The new password: one line of stdin with `--password-stdin`, else typed twice at the
/// terminal without echo.
fn read_new_password(user: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from stdin")?;
        let line = text
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&text);
        line.to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("stdin is not a terminal: pass --password-stdin to read the password from it");
        }
        let first = read_hidden(&format!("new password for {user}: "))?;
        let second = read_hidden("again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing changed");
        }
        first
    };
    hashmesh_node::auth::password::check_new_password(&password)?;
    Ok(password)
}

/// Reads one line from the terminal on stdin with echo turned off.
fn read_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    // SAFETY: tcgetattr fills the zeroed struct we own; tcsetattr only reads it.
    let saved = unsafe {
        let mut term: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
            bail!(
                "cannot read the terminal settings: {}",
                std::io::Error::last_os_error()
            );
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) != 0 {
            bail!("cannot turn off echo: {}", std::io::Error::last_os_error());
        }
        saved
    };
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe {
        libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// A unix time in milliseconds as `YYYY-MM-DD HH:MM UTC`.
fn utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date, counting in 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_764_540_000_000), "2025-11-30 22:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59 UTC");
    }
}
