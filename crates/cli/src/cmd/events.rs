use std::process::ExitCode;
use std::time::Duration;

use bulwark_ops::{list_events, ship_stream, EventKind, ShipOptions};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Read lines from stdin and ship them to a configured [[sink]]
    /// (a line that is not JSON goes as {"message": LINE})
    Ship {
        /// The [[sink]] to ship to
        #[arg(long)]
        sink: String,
    },
    /// The exported event stream, oldest first
    List {
        /// Only events after this sequence number
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Only this kind: audit, incident, alert, job, drill, secret
        #[arg(long)]
        kind: Option<String>,
        /// At most this many
        #[arg(long, short = 'n', default_value_t = 100)]
        limit: u32,
    },
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    match command {
        Command::Ship { sink } => super::runtime()?.block_on(async {
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let summary = ship_stream(
                &loaded.config,
                &globals.data_dir,
                &sink,
                stdin,
                Duration::from_secs(1),
                &ShipOptions::default(),
            )
            .await?;
            if globals.json {
                crate::output::print_json(&crate::wire::Shipped {
                    batches: summary.batches,
                    lines: summary.lines,
                    sink: sink.clone(),
                });
            } else {
                println!(
                    "shipped {} lines in {} batches to sink \"{sink}\"",
                    summary.lines, summary.batches
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
        Command::List { after, kind, limit } => {
            let kind = match kind.as_deref() {
                None => None,
                Some(k) => Some(EventKind::parse(k).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown event kind {k:?} (expected one of audit, incident, alert, job, drill, secret)"
                    )
                })?),
            };
            super::runtime()?.block_on(async {
                let store = super::open_store(globals, &loaded.config).await?;
                let list = list_events(&store, after, kind, limit).await?;
                store.close().await;
                if globals.json {
                    // The lines a sink receives, as one array.
                    let lines: Vec<String> = list.iter().map(|e| e.to_json()).collect();
                    println!("[{}]", lines.join(","));
                } else {
                    for e in &list {
                        println!(
                            "{:>6}  {}  {:<8}  {}",
                            e.seq,
                            e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            e.kind,
                            e.body
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}
