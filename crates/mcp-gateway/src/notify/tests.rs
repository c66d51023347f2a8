//! The hub: every session served by one task, a slow session held apart,
//! and the sessions whose client left dropped.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcp_core::{BoxFuture, McpServer, Peer, RequestContext, ServerId};
use mcp_protocol::Notification;
use mcp_runtime::{McpRuntime, ServerEvent};
use tokio::sync::{Semaphore, mpsc};

use crate::Gateway;

/// A client session that records what it is told, and can be made slow
/// (each notification waits for a permit) or gone.
struct Client {
    told: mpsc::UnboundedSender<String>,
    gate: Option<Arc<Semaphore>>,
    gone: AtomicBool,
    key: u64,
}

impl Peer for Client {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("the gate stays open").forget();
            }
            let _ = self.told.send(notification.method.into_owned());
        })
    }

    fn is_closed(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    fn session(&self) -> Option<u64> {
        Some(self.key)
    }
}

fn client(gate: Option<Arc<Semaphore>>) -> (Arc<Client>, mpsc::UnboundedReceiver<String>) {
    let (told, heard) = mpsc::unbounded_channel();
    let client = Arc::new(Client {
        told,
        gate,
        gone: AtomicBool::new(false),
        key: mcp_core::next_session_key(),
    });
    (client, heard)
}

async fn initialized(gateway: &Gateway, client: &Arc<Client>) {
    let notification = Notification {
        method: Cow::Borrowed("notifications/initialized"),
        params: None,
    };
    let peer: Arc<dyn Peer> = client.clone();
    gateway
        .handle_notification(notification, RequestContext::new(peer))
        .await;
}

fn changed(runtime: &McpRuntime, list: &'static str) {
    runtime.publish(ServerEvent {
        server: ServerId::new("s").expect("a valid id"),
        notification: Notification {
            method: Cow::Borrowed(list),
            params: None,
        },
    });
}

async fn next(heard: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("told within 5 s")
        .expect("still listening")
}

#[tokio::test(start_paused = true)]
async fn a_slow_session_holds_up_nobody_and_catches_up_on_list_changes() {
    let runtime = McpRuntime::start();
    let gateway = Gateway::new(Vec::new(), "__").with_notifications(runtime.clone());
    let gate = Arc::new(Semaphore::new(0));
    let (fast, mut fast_heard) = client(None);
    let (slow, mut slow_heard) = client(Some(gate.clone()));
    initialized(&gateway, &fast).await;
    initialized(&gateway, &slow).await;
    assert_eq!(gateway.hub.len(), 2);
    // Let the hub's task subscribe before anything is published.
    tokio::task::yield_now().await;

    changed(&runtime, "notifications/tools/list_changed");
    assert_eq!(
        next(&mut fast_heard).await,
        "notifications/tools/list_changed"
    );
    changed(&runtime, "notifications/prompts/list_changed");
    assert_eq!(
        next(&mut fast_heard).await,
        "notifications/prompts/list_changed"
    );
    changed(&runtime, "notifications/prompts/list_changed");
    assert_eq!(
        next(&mut fast_heard).await,
        "notifications/prompts/list_changed"
    );
    assert!(
        slow_heard.try_recv().is_err(),
        "the slow one has taken nothing yet"
    );

    // The slow client takes what held it up, then what changed meanwhile,
    // once per list.
    gate.add_permits(10);
    assert_eq!(
        next(&mut slow_heard).await,
        "notifications/tools/list_changed"
    );
    assert_eq!(
        next(&mut slow_heard).await,
        "notifications/prompts/list_changed"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(slow_heard.try_recv().is_err(), "nothing twice");
    runtime.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn sessions_whose_client_left_are_dropped() {
    let runtime = McpRuntime::start();
    let gateway = Gateway::new(Vec::new(), "__").with_notifications(runtime.clone());
    let (staying, mut heard) = client(None);
    let (leaving, _) = client(None);
    initialized(&gateway, &staying).await;
    initialized(&gateway, &leaving).await;
    leaving.gone.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gateway.hub.len(), 1, "swept within a second");
    changed(&runtime, "notifications/resources/list_changed");
    assert_eq!(
        next(&mut heard).await,
        "notifications/resources/list_changed"
    );
    runtime.shutdown().await;
}
