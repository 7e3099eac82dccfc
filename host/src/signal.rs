//! Process signals the daemon acts on.
//!
//! - `SIGTERM` (systemd stopping the unit) and `SIGINT` (Ctrl-C in a
//!   terminal) stop the daemon after the current cycle, or abandon the cycle
//!   when it does not finish within the grace period.
//! - `SIGHUP` reopens the log file (after logrotate moved it) and rescans
//!   the plugins folder.

use tokio::sync::watch;

/// Receives the stop request.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// Creates a shutdown that fires when `signal` completes.
    pub fn from_future(signal: impl std::future::Future<Output = ()> + Send + 'static) -> Shutdown {
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = sender.send(true);
        });
        Shutdown { receiver }
    }

    /// A shutdown that never fires.
    pub fn never() -> Shutdown {
        let (sender, receiver) = watch::channel(false);
        // Keep the sender alive so `wait` pends instead of returning.
        std::mem::forget(sender);
        Shutdown { receiver }
    }

    /// True once the stop was requested.
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Waits until the stop is requested.
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|requested| *requested).await;
    }
}

/// Waits for `SIGTERM` or `SIGINT` and logs which one arrived.
pub async fn terminate() {
    use tokio::signal::unix::{signal, SignalKind};

    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(error = %error, "cannot listen for SIGTERM and SIGINT");
            return std::future::pending().await;
        }
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = %name, "stop requested");
}

/// A stream of `SIGHUP` arrivals, or `None` when it cannot be listened for.
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::error!(error = %error, "cannot listen for SIGHUP");
            None
        }
    }
}
