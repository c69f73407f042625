//! A minimal command line over the engine for profiling without building
//! the whole CLI: `repo_ops (backup|restore|check) REPO [ARG]`, password in
//! `BULWARK_PASSWORD`. Opens the repository as the CLI does (key
//! derivation and index loading included).
//!
//! `cargo build --release -p bulwark-repo --example repo_ops`

use bulwark_repo::{
    backup, check, open_backend, restore, BackupOptions, Cancel, ReadData, Repository,
    RestoreOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(path)) = (args.get(1), args.get(2)) else {
        return Err("usage: repo_ops (backup|restore|check) REPO [ARG]".into());
    };
    let pw = std::env::var("BULWARK_PASSWORD")?;
    let t = std::time::Instant::now();
    let mut repo = Repository::open(open_backend(path)?, pw.as_bytes())?;
    eprintln!("open: {:?}", t.elapsed());
    repo.load_index()?;
    eprintln!("index: {:?}", t.elapsed());
    let arg = args.get(3).cloned().unwrap_or_default();
    match op.as_str() {
        "backup" => {
            let s = backup(
                &mut repo,
                &BackupOptions {
                    paths: vec![arg.into()],
                    ..Default::default()
                },
                |_| {},
            )?;
            eprintln!("{s:?}");
        }
        "restore" => {
            let s = restore(
                &repo,
                "latest",
                &RestoreOptions {
                    target: arg.into(),
                    ..Default::default()
                },
            )?;
            eprintln!("files {} bytes {} errors {:?}", s.files, s.bytes, s.errors);
        }
        "check" => {
            let r = check(&mut repo, ReadData::All, &Cancel::default(), |_, _| {})?;
            eprintln!(
                "ok {} packs {} errors {:?}",
                r.is_ok(),
                r.packs_read,
                r.errors
            );
        }
        other => return Err(format!("unknown operation {other}").into()),
    }
    eprintln!("total: {:?}", t.elapsed());
    Ok(())
}
