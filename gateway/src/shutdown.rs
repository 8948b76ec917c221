//! SIGTERM and SIGINT, for the gateway's graceful shutdown and the mailer's stop.

/// Resolves on SIGTERM or SIGINT. The handlers are installed here, when called, not when the
/// future is first polled: a signal that arrives before that would kill the process at once.
pub fn signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
