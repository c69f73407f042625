use std::process::ExitCode;

use bulwark_ops::{
    create_silence, expire_silence, list_silences, Actor, NewSilence, Silence, SilenceEnd,
};

use bulwark_server::api::SilenceWire;

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Stop notifications about a monitor and/or tag for a while
    Add {
        #[arg(long)]
        monitor: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// How long, e.g. 2h, 30m, 1d
        #[arg(long, default_value = "1h")]
        duration: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List silences (active ones unless --all)
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now
    Expire { id: String },
}

fn row(s: &Silence) -> Vec<String> {
    let t = |t: bulwark_ops::Timestamp| t.to_datetime().format("%Y-%m-%d %H:%M:%SZ").to_string();
    vec![
        s.id.clone(),
        s.monitor.clone().unwrap_or_else(|| "*".into()),
        s.tag.clone().unwrap_or_else(|| "*".into()),
        t(s.ends_at),
        s.expired_at.map_or_else(String::new, t),
        s.created_by.clone(),
        s.comment.clone(),
    ]
}

/// What `/api/v1/silences` serves for `s`.
fn json(s: &Silence) -> SilenceWire {
    SilenceWire::from(s.clone())
}

const HEADER: [&str; 7] = ["ID", "MONITOR", "TAG", "ENDS", "EXPIRED", "BY", "COMMENT"];

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, &loaded.config).await?;
        let actor = Actor::cli();
        let now = bulwark_ops::Timestamp::now();
        match command {
            Command::Add {
                monitor,
                tag,
                duration,
                comment,
            } => {
                let d = bulwark_ops::parse_duration(&duration)
                    .map_err(|e| anyhow::anyhow!("invalid --duration: {e}"))?;
                let new = NewSilence {
                    monitor: monitor.as_deref(),
                    tag: tag.as_deref(),
                    comment: &comment,
                    ends: SilenceEnd::After(d),
                };
                let s = create_silence(&store, &loaded.config, &actor, new).await?;
                if globals.json {
                    crate::output::print_json(&json(&s));
                } else {
                    println!("created silence {}", s.id);
                }
            }
            Command::List { all } => {
                let list = list_silences(&store, all, now).await?;
                if globals.json {
                    crate::output::print_json(&list.iter().map(json).collect::<Vec<_>>());
                } else {
                    let rows: Vec<_> = list.iter().map(row).collect();
                    crate::output::print_table(&HEADER, &rows);
                }
            }
            Command::Expire { id } => {
                let s = expire_silence(&store, &actor, &id).await?;
                if globals.json {
                    crate::output::print_json(&json(&s));
                } else {
                    println!("expired silence {}", s.id);
                }
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
