use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bulwark_ops::{keys, Actor, Authenticator, Role, Store};
use bulwark_server::AppState;

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Listen address; overrides `[server] listen` and BULWARK_LISTEN
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub(crate) fn run(globals: &Globals, args: Args) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(globals)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut config = loaded.config;
        if let Some(listen) = args.listen {
            config.server.listen = listen;
        }
        match &config.source {
            Some(path) => tracing::info!(config = %path.display(), "loaded configuration"),
            None => tracing::info!(
                "no config file at {}: running on the embedded default",
                globals.config_path.display()
            ),
        }
        let store = super::open_store(globals, &config).await?;
        bootstrap_admin_key(
            globals,
            &store,
            &Authenticator::new(config.auth.keys.clone(), store.clone()),
        )
        .await?;

        let listen = config.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving");
        let state = Arc::new(AppState::new(Arc::new(config), store.clone()));
        bulwark_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("stopped accepting requests; closing the state store");
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// On a fresh install nobody holds an admin key, and without one nobody can
/// make one through the API: generate one and print it, once.
async fn bootstrap_admin_key(
    globals: &Globals,
    store: &Store,
    auth: &Authenticator,
) -> anyhow::Result<()> {
    if auth.has_static_admin() || keys::has_active_admin(store).await? {
        return Ok(());
    }
    let created = keys::create(
        store,
        &Actor::system("bootstrap"),
        Role::Admin,
        "bootstrap-admin",
    )
    .await?;
    if globals.json {
        crate::output::print_json(&serde_json::json!({
            "bootstrap_admin_key": { "id": created.info.id, "key": created.secret.expose() }
        }));
    } else {
        println!(
            "\nNo admin key existed, so Bulwark made one. It is shown only this once:\n\n    {}\n\n\
             Send it as `X-Dash-Key: <key>` or `Authorization: Bearer <key>`; revoke it with\n\
             `bulwark keys revoke {}` once you have made your own.\n",
            created.secret.expose(),
            created.info.id
        );
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
