//! The method names of MCP, and which protocol versions have each.

use std::fmt;

use crate::version::ProtocolVersion;

macro_rules! methods {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $kind:ident, $since:ident $(..$until:ident)?; )*) => {
        /// A method MCP defines, request or notification.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Method {
            $( $(#[$doc])* $variant, )*
        }

        impl Method {
            /// Every method this crate knows.
            pub const ALL: &'static [Method] = &[$(Method::$variant,)*];

            /// The method's position in [`Method::ALL`], for tables by
            /// method.
            #[must_use]
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The method's name on the wire.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $( Method::$variant => $name, )* }
            }

            /// The method with this wire name, if MCP defines one.
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $name => Some(Method::$variant), )* _ => None }
            }

            /// Whether the method is a notification (no response).
            #[must_use]
            pub const fn is_notification(self) -> bool {
                match self { $( Method::$variant => matches!(MethodKind::$kind, MethodKind::Notification), )* }
            }

            /// Who sends it.
            #[must_use]
            pub const fn sender(self) -> Sender {
                match self { $( Method::$variant => MethodKind::$kind.sender(), )* }
            }

            /// The versions that define the method: the first, and the first
            /// that no longer has it.
            const fn span(self) -> (ProtocolVersion, Option<ProtocolVersion>) {
                match self {
                    $( Method::$variant => (ProtocolVersion::$since, methods!(@until $($until)?)), )*
                }
            }
        }
    };
    (@until) => { None };
    (@until $until:ident) => { Some(ProtocolVersion::$until) };
}

/// Who sends a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// Only clients send it.
    Client,
    /// Only servers send it.
    Server,
    /// Either side sends it.
    Either,
}

enum MethodKind {
    ClientRequest,
    ServerRequest,
    EitherRequest,
    Notification,
    ClientNotification,
    ServerNotification,
}

impl MethodKind {
    const fn sender(self) -> Sender {
        match self {
            Self::ClientRequest | Self::ClientNotification => Sender::Client,
            Self::ServerRequest | Self::ServerNotification => Sender::Server,
            Self::EitherRequest | Self::Notification => Sender::Either,
        }
    }
}

methods! {
    /// `initialize`: the handshake of stateful versions.
    Initialize = "initialize", ClientRequest, V2024_11_05..V2026_07_28;
    /// `ping`.
    Ping = "ping", EitherRequest, V2024_11_05..V2026_07_28;
    /// `server/discover`: what a stateless server supports.
    Discover = "server/discover", ClientRequest, V2026_07_28;
    /// `tools/list`.
    ToolsList = "tools/list", ClientRequest, V2024_11_05;
    /// `tools/call`.
    ToolsCall = "tools/call", ClientRequest, V2024_11_05;
    /// `resources/list`.
    ResourcesList = "resources/list", ClientRequest, V2024_11_05;
    /// `resources/templates/list`.
    ResourceTemplatesList = "resources/templates/list", ClientRequest, V2024_11_05;
    /// `resources/read`.
    ResourcesRead = "resources/read", ClientRequest, V2024_11_05;
    /// `resources/subscribe`.
    ResourcesSubscribe = "resources/subscribe", ClientRequest, V2024_11_05..V2026_07_28;
    /// `resources/unsubscribe`.
    ResourcesUnsubscribe = "resources/unsubscribe", ClientRequest, V2024_11_05..V2026_07_28;
    /// `prompts/list`.
    PromptsList = "prompts/list", ClientRequest, V2024_11_05;
    /// `prompts/get`.
    PromptsGet = "prompts/get", ClientRequest, V2024_11_05;
    /// `completion/complete`.
    Complete = "completion/complete", ClientRequest, V2024_11_05;
    /// `logging/setLevel`.
    SetLogLevel = "logging/setLevel", ClientRequest, V2024_11_05..V2026_07_28;
    /// `subscriptions/listen`: the notification stream of stateless versions.
    SubscriptionsListen = "subscriptions/listen", ClientRequest, V2026_07_28;
    /// `tasks/get`: a task's state (in 2026-07-28, of the Tasks extension,
    /// with its result inlined).
    TasksGet = "tasks/get", EitherRequest, V2025_11_25;
    /// `tasks/update`: answers to a task's input requests (the Tasks
    /// extension).
    TasksUpdate = "tasks/update", EitherRequest, V2026_07_28;
    /// `tasks/result`: a task's result (2025-11-25 only).
    TasksResult = "tasks/result", EitherRequest, V2025_11_25..V2026_07_28;
    /// `tasks/list` (2025-11-25 only).
    TasksList = "tasks/list", EitherRequest, V2025_11_25..V2026_07_28;
    /// `tasks/cancel`.
    TasksCancel = "tasks/cancel", EitherRequest, V2025_11_25;
    /// `sampling/createMessage`: a server asks the client's model.
    CreateMessage = "sampling/createMessage", ServerRequest, V2024_11_05;
    /// `elicitation/create`: a server asks the user.
    Elicit = "elicitation/create", ServerRequest, V2025_06_18;
    /// `roots/list`: a server asks for the client's roots.
    RootsList = "roots/list", ServerRequest, V2024_11_05;
    /// `notifications/initialized`.
    Initialized = "notifications/initialized", ClientNotification, V2024_11_05..V2026_07_28;
    /// `notifications/cancelled`.
    Cancelled = "notifications/cancelled", Notification, V2024_11_05;
    /// `notifications/progress`.
    Progress = "notifications/progress", Notification, V2024_11_05;
    /// `notifications/message`: a log message.
    LogMessage = "notifications/message", ServerNotification, V2024_11_05;
    /// `notifications/resources/updated`.
    ResourceUpdated = "notifications/resources/updated", ServerNotification, V2024_11_05;
    /// `notifications/resources/list_changed`.
    ResourceListChanged = "notifications/resources/list_changed", ServerNotification, V2024_11_05;
    /// `notifications/tools/list_changed`.
    ToolListChanged = "notifications/tools/list_changed", ServerNotification, V2024_11_05;
    /// `notifications/prompts/list_changed`.
    PromptListChanged = "notifications/prompts/list_changed", ServerNotification, V2024_11_05;
    /// `notifications/roots/list_changed`.
    RootsListChanged = "notifications/roots/list_changed", ClientNotification, V2024_11_05..V2026_07_28;
    /// `notifications/elicitation/complete`: a URL elicitation finished.
    ElicitationComplete = "notifications/elicitation/complete", ServerNotification, V2025_11_25..V2026_07_28;
    /// `notifications/tasks/status`.
    TaskStatus = "notifications/tasks/status", Notification, V2025_11_25..V2026_07_28;
    /// `notifications/subscriptions/acknowledged`: a listen stream is open.
    SubscriptionsAcknowledged = "notifications/subscriptions/acknowledged", ServerNotification, V2026_07_28;
}

impl Method {
    /// Whether protocol `version` defines this method. In 2026-07-28 the
    /// server-to-client requests live on only inside `input_required`
    /// results, not as requests on the wire.
    #[must_use]
    pub fn is_in(self, version: ProtocolVersion) -> bool {
        let (since, until) = self.span();
        let on_wire = !(version == ProtocolVersion::V2026_07_28
            && self.sender() == Sender::Server
            && !self.is_notification());
        version >= since && until.is_none_or(|until| version < until) && on_wire
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion as V;

    #[test]
    fn names_round_trip() {
        for &m in Method::ALL {
            assert_eq!(Method::from_name(m.as_str()), Some(m));
        }
        assert_eq!(Method::from_name("tools/frobnicate"), None);
    }

    #[test]
    fn availability_follows_the_versions() {
        assert!(Method::Initialize.is_in(V::V2025_11_25));
        assert!(!Method::Initialize.is_in(V::V2026_07_28));
        assert!(Method::Discover.is_in(V::V2026_07_28));
        assert!(!Method::Discover.is_in(V::V2025_11_25));
        assert!(!Method::Elicit.is_in(V::V2025_03_26));
        assert!(Method::Elicit.is_in(V::V2025_06_18));
        assert!(!Method::Elicit.is_in(V::V2026_07_28));
        assert!(Method::TasksGet.is_in(V::V2025_11_25));
        assert!(Method::TasksGet.is_in(V::V2026_07_28));
        assert!(!Method::TasksUpdate.is_in(V::V2025_11_25));
        assert!(!Method::TasksResult.is_in(V::V2026_07_28));
        assert!(!Method::SetLogLevel.is_in(V::V2026_07_28));
        assert!(Method::ToolsCall.is_in(V::V2026_07_28));
        assert!(Method::Progress.is_notification());
        assert!(!Method::ToolsCall.is_notification());
        assert_eq!(Method::CreateMessage.sender(), Sender::Server);
    }
}
