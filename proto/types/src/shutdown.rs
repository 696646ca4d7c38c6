//! The one shutdown signal of every Phalanx process (feature `signal`).

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, whichever comes first: what an operator,
/// systemd and Kubernetes send. If SIGTERM cannot be watched, Ctrl-C alone.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
