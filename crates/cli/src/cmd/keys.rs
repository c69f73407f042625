use std::process::ExitCode;

use bulwark_ops::{create_key, list_keys, revoke_key, Actor, Role};
use bulwark_server::api::{CreatedKey, KeyMeta};

use crate::Globals;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a key; it is printed once and only its hash is stored
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A name to recognise the key by in lists and the audit trail
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List keys (metadata only)
    List,
    /// Revoke a key by id
    Revoke { id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: bulwark_ops::UnknownRole| e.to_string())
}

pub(crate) fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    super::runtime()?.block_on(async {
        let store = super::open_store(globals, &loaded.config).await?;
        let actor = Actor::cli();
        match command {
            Command::Create { role, name } => {
                let created = create_key(&store, &actor, role, &name).await?;
                if globals.json {
                    // `POST /api/v1/keys`'s answer.
                    crate::output::print_json(&CreatedKey::from(created));
                } else {
                    eprintln!(
                        "created {} key {} ({}); it is shown only now:",
                        created.info.role, created.info.name, created.info.id
                    );
                    println!("{}", created.secret.expose());
                }
            }
            Command::List => {
                let list = list_keys(&store).await?;
                if globals.json {
                    // `GET /api/v1/keys`'s answer.
                    let wire: Vec<KeyMeta> = list.iter().cloned().map(KeyMeta::from).collect();
                    crate::output::print_json(&wire);
                } else {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|k| {
                            vec![
                                k.id.clone(),
                                k.name.clone(),
                                k.role.to_string(),
                                k.created_at
                                    .to_datetime()
                                    .format("%Y-%m-%d %H:%M:%SZ")
                                    .to_string(),
                                k.created_by.clone(),
                                k.revoked_at.map_or_else(
                                    || "active".to_string(),
                                    |t| {
                                        format!(
                                            "revoked {}",
                                            t.to_datetime().format("%Y-%m-%d %H:%M:%SZ")
                                        )
                                    },
                                ),
                            ]
                        })
                        .collect();
                    crate::output::print_table(
                        &["ID", "NAME", "ROLE", "CREATED", "BY", "STATUS"],
                        &rows,
                    );
                }
            }
            Command::Revoke { id } => {
                let info = revoke_key(&store, &actor, &id).await?;
                if globals.json {
                    // `DELETE /api/v1/keys/{id}`'s answer.
                    crate::output::print_json(&KeyMeta::from(info));
                } else {
                    println!("revoked key {} ({})", info.id, info.name);
                }
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
