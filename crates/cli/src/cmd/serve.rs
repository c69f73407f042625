use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bulwark_ops::{create_key, Actor, Instance, Role};
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
        let listen = config.server.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving");
        if config.source.is_none() && config.monitors.is_empty() {
            // The embedded default monitors Bulwark itself.
            config.monitors.push(self_monitor(listener.local_addr()?));
        }
        let instance = Arc::new(super::open_instance(globals, config).await?);
        ensure_secrets(&instance).await;
        bootstrap_admin_key(globals, &instance).await?;

        let state = AppState::new(instance.clone());
        // One shutdown signal, seen by the HTTP server and the scheduler.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let scheduler = tokio::spawn(
            instance
                .scheduler
                .clone()
                .run(stopped(stop_rx.clone()), std::time::Duration::from_secs(30)),
        );
        let mut engine_opts = bulwark_ops::EngineOptions::new(&globals.data_dir);
        engine_opts.observer = Some(bulwark_server::monitoring_observer(&state.metrics));
        engine_opts.ship.observer = Some(bulwark_server::events_observer(&state.metrics));
        engine_opts.raw_retention = instance.config.server.results_retention;
        let engine = instance
            .start_engine(engine_opts)
            .await
            .context("cannot start the monitoring engine")?;
        let state = Arc::new(state.with_live(engine.live()));
        let options = bulwark_server::ServeOptions::from_config(&instance.config.server);
        bulwark_server::serve(listener, state, options, stopped(stop_rx)).await;
        tracing::info!("stopping the monitoring engine");
        engine.stop().await;
        tracing::info!("stopping the scheduler");
        if let Err(e) = scheduler.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
        tracing::info!("stopped accepting requests; closing the state store");
        instance.store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The embedded default's monitor: Bulwark's own `/healthz`.
fn self_monitor(addr: SocketAddr) -> bulwark_ops::MonitorConfig {
    use bulwark_ops::{
        HttpCheck, MonitorConfig, MonitorKind, DEFAULT_INTERVAL, DEFAULT_RECOVER_AFTER,
        DEFAULT_STRIKES, DEFAULT_TIMEOUT,
    };
    // A wildcard listen address is reachable on loopback.
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("http://{host}:{}/healthz", addr.port());
    // Built the way the `BASE_URL` monitor is, so UPTIME_INTERVAL_SEC
    // and UPTIME_STRIKES apply to it too.
    let env = |k: &str| match k {
        "BASE_URL" => Some(url.clone()),
        _ => std::env::var(k).ok(),
    };
    if let Some(mut m) = bulwark_ops::parse_settings("", None, &env)
        .ok()
        .and_then(|l| l.config.monitors.into_iter().next())
    {
        m.name = "bulwark".to_string();
        m.tags = vec!["self".to_string()];
        return m;
    }
    MonitorConfig {
        name: "bulwark".to_string(),
        kind: MonitorKind::Http(HttpCheck {
            url,
            method: "GET".to_string(),
            headers: Vec::new(),
            body: None,
            expect_status: vec![200..=299],
            max_latency: None,
            body_contains: None,
            json: Vec::new(),
            cert_min_days: None,
        }),
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_TIMEOUT,
        strikes: DEFAULT_STRIKES,
        recover_after: DEFAULT_RECOVER_AFTER,
        tags: vec!["self".to_string()],
        public: false,
    }
}

/// Generates managed secrets that have no value yet and rotates those that
/// came due while Bulwark was down, before anything reads them (the admin
/// key check below counts a `DASHBOARD_KEY`). Failures are logged: the
/// hourly rotation job retries them.
async fn ensure_secrets(instance: &Instance) {
    let actor = Actor::system("scheduler");
    for cfg in &instance.config.secrets {
        match bulwark_ops::secret_rotation_check(
            &instance.store,
            &instance.data_dir,
            cfg,
            &actor,
            chrono::Utc::now(),
        )
        .await
        {
            Ok(Some(r)) => {
                tracing::info!(secret = %r.name, version = r.version, "managed secret written")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(secret = %cfg.name, error = %e, "cannot prepare managed secret")
            }
        }
    }
}

/// On a fresh install nobody holds an admin key, and without one nobody can
/// make one through the API: generate one and print it, once.
async fn bootstrap_admin_key(globals: &Globals, instance: &Instance) -> anyhow::Result<()> {
    if instance.auth.has_admin().await? {
        return Ok(());
    }
    let created = create_key(
        &instance.store,
        &Actor::system("bootstrap"),
        Role::Admin,
        "bootstrap-admin",
    )
    .await?;
    if globals.json {
        crate::output::print_json(&crate::wire::BootstrapKey {
            bootstrap_admin_key: crate::wire::BootstrapKeyJson {
                id: created.info.id.clone(),
                key: created.secret.expose().to_string(),
            },
        });
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
pub(crate) async fn shutdown_signal() {
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
