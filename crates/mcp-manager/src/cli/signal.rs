//! Ctrl-C and SIGTERM, as every part of `serve` waits for them: one
//! listener per process, made at the first call, told to every caller
//! through a watch (a listener made after a signal does not see it).

/// Resolves on Ctrl-C or SIGTERM: the first one this process got since
/// it first asked, however late the asking. (A listener made after a
/// signal does not see it; so one listener, made at the first call, tells
/// every caller through a watch.)
pub(crate) async fn signalled() {
    static STOP: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
        std::sync::OnceLock::new();
    let mut stop = STOP
        .get_or_init(|| {
            let (tell, told) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                os_signal().await;
                let _ = tell.send(true);
                // Kept, so that callers after this one see it too.
                std::future::pending::<()>().await;
            });
            told
        })
        .clone();
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        // The runtime that listened is gone (a command line run twice in
        // one process): listen anew.
        os_signal().await;
    }
}

/// Resolves on Ctrl-C or SIGTERM that arrive from now on.
async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
