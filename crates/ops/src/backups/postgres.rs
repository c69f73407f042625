//! `kind = "postgres"`: the connection URL taken apart so that its password
//! reaches `pg_dump` only as `PGPASSWORD` in the child's environment, and
//! the PostgreSQL client and server binaries found on the machine.

use std::path::{Path, PathBuf};

use crate::config::{PostgresSource, Secret};

/// A `postgres://` URL without its password, and the password.
pub(crate) struct Conn {
    /// The URL with no password (not in the userinfo, not as a
    /// `password=` parameter) and no database path: safe on a command line.
    pub(crate) url: url::Url,
    pub(crate) password: Option<Secret<String>>,
    pub(crate) database: Option<String>,
}

/// Takes `raw` apart. Errors never quote it: it carries the password.
pub(crate) fn parse_url(raw: &str) -> Result<Conn, String> {
    let bad = "must be a postgres://user:pass@host:port/db url";
    let mut url = url::Url::parse(raw.trim()).map_err(|_| bad.to_string())?;
    if !matches!(url.scheme(), "postgres" | "postgresql")
        || url.host_str().is_none_or(str::is_empty)
    {
        return Err(bad.to_string());
    }
    let mut password = url.password().map(percent_decode);
    let database =
        Some(percent_decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
    if database.as_deref().is_some_and(|d| !plain_name(d)) {
        return Err(
            "names a database that is not a plain name (letters, digits, `_`, `-`, `.`)".into(),
        );
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "password" {
                password = Some(v.to_string());
                None
            } else {
                Some((k.to_string(), v.to_string()))
            }
        })
        .collect();
    url.set_password(None).map_err(|()| bad.to_string())?;
    url.set_path("");
    url.set_query(None);
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(Conn {
        url,
        password: password.map(Secret::new),
        database,
    })
}

/// A database name Bulwark puts in URLs and file names as it is.
pub(crate) fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directories where Debian and Ubuntu install PostgreSQL's binaries,
/// newest major version first.
pub(crate) fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// `name` on `PATH`, else in the newest `/usr/lib/postgresql/*/bin`.
pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(debian_bin_dirs().into_iter().map(|d| d.join(name)))
        .find(|p| is_executable(p))
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The file name of `database`'s dump in its snapshot: `.dump` for the
/// custom, directory-less formats, `.sql` for plain text.
pub(crate) fn dump_name(database: &str, options: &[String]) -> String {
    let plain = options
        .iter()
        .any(|o| matches!(o.as_str(), "-Fp" | "--format=p" | "--format=plain"));
    if plain {
        format!("{database}.sql")
    } else {
        format!("{database}.dump")
    }
}

/// `pg_dump` for `database`: connection without the password as `-d`,
/// the password only in `PGPASSWORD`, the rest of the environment as
/// [`crate::child_env`] gives every command.
///
/// # Errors
/// No `pg_dump` found, or a URL that does not parse (never quoted).
pub(crate) fn dump_command(
    src: &PostgresSource,
    database: &str,
) -> Result<(std::process::Command, String), String> {
    let conn = parse_url(src.url.expose())?;
    let program = match &src.pg_dump {
        Some(p) => p.clone(),
        None => find_binary("pg_dump")
            .ok_or("no pg_dump on PATH or under /usr/lib/postgresql/*/bin: install the PostgreSQL client or set `pg_dump`")?,
    };
    let mut url = conn.url.clone();
    url.set_path(&format!("/{database}"));
    let mut cmd = std::process::Command::new(&program);
    let mut own = Vec::new();
    if let Some(pw) = &conn.password {
        own.push(("PGPASSWORD", pw.expose().clone()));
    }
    crate::child_env::apply_std(&mut cmd, &Default::default(), &own);
    cmd.args(&src.pg_dump_options).arg("-d").arg(url.as_str());
    Ok((cmd, program.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_loses_its_password() {
        let c =
            parse_url("postgres://app:s%40cret@db.example:6543/shop?sslmode=require&password=x2")
                .unwrap();
        assert_eq!(c.password.unwrap().expose(), "x2");
        assert_eq!(c.database.as_deref(), Some("shop"));
        assert_eq!(
            c.url.as_str(),
            "postgres://app@db.example:6543?sslmode=require"
        );
        let c = parse_url("postgresql://app:s%40cret@db/shop").unwrap();
        assert_eq!(c.password.unwrap().expose(), "s@cret");
        assert!(!c.url.as_str().contains("cret"));
    }

    #[test]
    fn bad_urls_are_not_quoted() {
        for bad in [
            "mysql://u:hunter2@h/db",
            "postgres://u:hunter2@/db",
            "hunter2",
        ] {
            let e = parse_url(bad).err().unwrap();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn dump_names() {
        assert_eq!(dump_name("app", &["-Fc".into()]), "app.dump");
        assert_eq!(dump_name("app", &["-Fp".into()]), "app.sql");
    }
}
