//! Serve the topic feeds of an existing database without polling: the HTTP half of
//! `newsdesk run`, for benchmarks (bench/serve.sh) and for looking at output while developing.
//!
//! `cargo run --release --example serve -- feeds.toml [127.0.0.1:8080]`
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use newsdesk::config::Config;
use newsdesk::serve::{self, AppState};
use newsdesk::store::Store;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "feeds.toml".into()));
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen = args.next().unwrap_or_else(|| config.daemon.listen.clone());
    let store = Store::open(&config.daemon.database)?;
    // No scheduler here: report alive so /healthz answers 200.
    let heartbeat = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp()));
    let state = AppState::new(store, Arc::new(RwLock::new(Arc::new(config))), heartbeat);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
        eprintln!("serving {} on http://{listen}/", path.display());
        serve::run(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
