//! The Rust client of kodad, a coding-agent engine served over gRPC.
//!
//! ```no_run
//! # async fn example() -> Result<(), kodad_client::Error> {
//! use futures_util::StreamExt;
//! use kodad_client::{pb, Client, Handlers};
//!
//! let client = Client::connect("127.0.0.1:50051").await?;
//! let session = client
//!     .create_session(pb::Session { workspace: "/path/to/repo".into(), ..Default::default() })
//!     .await?;
//! let mut events = client.run_turn(&session.id, "add a README", Handlers::default()).await?;
//! while let Some(event) = events.next().await {
//!     println!("{:?}", event?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Approval and loop-cap questions go to [`Handlers`] (default: reject / stop). Failed calls are
//! [`Error`] values carrying the gRPC status code.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, Stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status, Streaming};

mod sidecar;
pub use sidecar::{spawn_sidecar, ReadyLine, Sidecar, SidecarError, SidecarOptions};

/// The generated `koda.v1` messages and the gRPC client stub.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    // Includes koda.v1.tonic.rs, the client stub.
    include!("gen/koda/v1/koda.v1.rs");
}

use pb::engine_command::Command;
use pb::engine_event::Payload;
use pb::session_service_client::SessionServiceClient;
use tonic_types::StatusExt;

/// The koda.v1 contract version this client was built for; compare it with
/// `server_info().contract_version` (major.minor) to detect a service of another release.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A failed call: its gRPC status code, the service's message and the status's
/// google.rpc.ErrorInfo (reason and metadata).
#[derive(Debug, Clone)]
pub struct Error {
    /// The gRPC status code, e.g. `Code::NotFound`.
    pub code: Code,
    /// The service's message.
    pub message: String,
    /// The ErrorInfo's reason, e.g. `TURN_ALREADY_RUNNING` (the proto's SessionService
    /// comment lists them); empty when the failure did not come from kodad.
    pub reason: String,
    /// The ErrorInfo's metadata, e.g. `turn_id` for `TURN_ALREADY_RUNNING`.
    pub metadata: std::collections::HashMap<String, String>,
    /// Whether the failure was found on the client's side (a refused connection, a bad
    /// address) rather than a status the service returned.
    pub client_side: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        (self.code, &self.message, &self.reason, &self.metadata, self.client_side)
            == (other.code, &other.message, &other.reason, &other.metadata, other.client_side)
    }
}

impl Eq for Error {}

impl Error {
    /// A failure found on the client's side (no ErrorInfo).
    fn client(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            reason: String::new(),
            metadata: Default::default(),
            client_side: true,
            source: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let (reason, metadata) = match status.get_details_error_info() {
            Some(info) => (info.reason, info.metadata.into_iter().collect()),
            None => (String::new(), Default::default()),
        };
        let code = status.code();
        let message = status.message().to_string();
        Error { code, message, reason, metadata, client_side: false, source: Some(Arc::new(status)) }
    }
}

impl From<tonic::transport::Error> for Error {
    /// A connection failure, with its causes in the message ("transport error: tcp connect
    /// error: Connection refused (os error 111)"), the transport's error kept as the source.
    fn from(error: tonic::transport::Error) -> Self {
        let mut message = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(inner) = cause {
            message = format!("{message}: {inner}");
            cause = inner.source();
        }
        Error { source: Some(Arc::new(error)), ..Error::client(Code::Unavailable, message) }
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// The generated stub as the client uses it.
pub type RawClient = SessionServiceClient<InterceptedService<Channel, Auth>>;

/// How to reach the service.
#[derive(Default, Clone)]
pub struct ConnectOptions {
    /// A bearer token sent with every call.
    pub token: Option<String>,
    /// Connect with TLS (with a client identity for mutual TLS).
    pub tls: Option<ClientTlsConfig>,
}

/// A decision on an approval request.
#[derive(Debug, Clone)]
pub struct ApprovalAnswer {
    /// The decision.
    pub decision: pb::Decision,
    /// Feedback for the model (with a rejection).
    pub feedback: String,
}

/// A decision on a loop-cap question.
#[derive(Debug, Clone)]
pub struct LoopAnswer {
    /// Continue or stop.
    pub action: pb::LoopAction,
    /// Extra iterations granted when continuing (0: the session's cap again).
    pub extra_iterations: i32,
}

type OnApproval = dyn Fn(&pb::ApprovalRequested) -> Option<ApprovalAnswer> + Send + Sync;
type OnLoopCap = dyn Fn(&pb::LoopCapReached) -> Option<LoopAnswer> + Send + Sync;
type OnQuestion = dyn Fn(&pb::UserQuestion) -> Option<String> + Send + Sync;

/// What an ask_user question gets when the turn has no question handler.
pub const NO_ANSWER: &str =
    "Nobody can answer questions here: decide yourself, go on, and say in your answer what you assumed.";

/// Answers a turn's questions. By default approvals are rejected, the loop stops and ask_user
/// questions get [`NO_ANSWER`]; a handler returning `None` leaves the question to another client.
#[derive(Clone)]
pub struct Handlers {
    on_approval: Arc<OnApproval>,
    on_loop_cap: Arc<OnLoopCap>,
    on_question: Arc<OnQuestion>,
    continue_on_disconnect: bool,
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers {
            on_approval: Arc::new(|_| {
                Some(ApprovalAnswer { decision: pb::Decision::Reject, feedback: String::new() })
            }),
            on_loop_cap: Arc::new(|_| Some(LoopAnswer { action: pb::LoopAction::Stop, extra_iterations: 0 })),
            on_question: Arc::new(|_| Some(NO_ANSWER.to_string())),
            continue_on_disconnect: false,
        }
    }
}

impl Handlers {
    /// Decides approval requests.
    pub fn on_approval(
        mut self,
        handler: impl Fn(&pb::ApprovalRequested) -> Option<ApprovalAnswer> + Send + Sync + 'static,
    ) -> Self {
        self.on_approval = Arc::new(handler);
        self
    }

    /// Decides loop-cap questions.
    pub fn on_loop_cap(
        mut self,
        handler: impl Fn(&pb::LoopCapReached) -> Option<LoopAnswer> + Send + Sync + 'static,
    ) -> Self {
        self.on_loop_cap = Arc::new(handler);
        self
    }

    /// Answers ask_user questions.
    pub fn on_question(
        mut self,
        handler: impl Fn(&pb::UserQuestion) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.on_question = Arc::new(handler);
        self
    }

    /// Keeps the turn running if the stream breaks (default: it is cancelled).
    pub fn continue_on_disconnect(mut self, value: bool) -> Self {
        self.continue_on_disconnect = value;
        self
    }
}

/// The answer of a turn started with an output schema, as a JSON value; None without one.
pub fn output(ended: &pb::TurnEnded) -> Result<Option<serde_json::Value>, Error> {
    if ended.output_json.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&ended.output_json)
        .map(Some)
        .map_err(|e| Error::client(Code::DataLoss, format!("output_json is not JSON: {e}")))
}

/// The proto name of an event's payload, e.g. `"text_delta"` (empty when unset).
pub fn event_kind(event: &pb::EngineEvent) -> &'static str {
    match &event.payload {
        None => "",
        Some(Payload::TurnStarted(_)) => "turn_started",
        Some(Payload::TextDelta(_)) => "text_delta",
        Some(Payload::ThinkingDelta(_)) => "thinking_delta",
        Some(Payload::ToolCallStarted(_)) => "tool_call_started",
        Some(Payload::ToolCallOutput(_)) => "tool_call_output",
        Some(Payload::ToolCallFinished(_)) => "tool_call_finished",
        Some(Payload::ApprovalRequested(_)) => "approval_requested",
        Some(Payload::ApprovalResolved(_)) => "approval_resolved",
        Some(Payload::LoopCapReached(_)) => "loop_cap_reached",
        Some(Payload::Usage(_)) => "usage",
        Some(Payload::FileChanged(_)) => "file_changed",
        Some(Payload::Notice(_)) => "notice",
        Some(Payload::TurnEnded(_)) => "turn_ended",
        Some(Payload::ContextUsage(_)) => "context_usage",
        Some(Payload::TodosUpdated(_)) => "todos_updated",
        Some(Payload::UserQuestion(_)) => "user_question",
        Some(Payload::RateLimits(_)) => "rate_limits",
        Some(Payload::UserInputAdded(_)) => "user_input_added",
        Some(Payload::TurnQueued(_)) => "turn_queued",
        Some(Payload::QueuedTurnRemoved(_)) => "queued_turn_removed",
        Some(Payload::CheckpointTaken(_)) => "checkpoint_taken",
        Some(Payload::TurnDiff(_)) => "turn_diff",
        Some(Payload::SessionRewound(_)) => "session_rewound",
    }
}

/// A stream of events; dropping it abandons the underlying call.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::EngineEvent, Error>> + Send>>;

/// Turns dropped before their end, by session: the task that ends each (its next turn waits).
type Ending = Arc<Mutex<HashMap<String, tokio::task::JoinHandle<()>>>>;

/// A running turn, driven step by step: read events, answer questions, cancel. Dropping it
/// before its end (leaving a loop early) cancels the turn: a task sends the cancel and reads
/// to its turn_ended (at most 10 s), and the session's next turn on this client waits for it.
pub struct Turn {
    commands: Option<mpsc::UnboundedSender<pb::RunTurnRequest>>,
    events: Option<Streaming<pb::RunTurnResponse>>,
    id: String,
    session_id: String,
    ended: bool,
    ending: Ending,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let (Some(commands), Some(mut events)) = (self.commands.take(), self.events.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime left: the dropped stream is a disconnect, which cancels it
        };
        let cancel = Command::Cancel(pb::Cancel {});
        let _ =
            commands.send(pb::RunTurnRequest { command: Some(pb::EngineCommand { command: Some(cancel) }) });
        let task = runtime.spawn(async move {
            let drain = async {
                while let Ok(Some(response)) = events.message().await {
                    if matches!(response.event.and_then(|e| e.payload), Some(Payload::TurnEnded(_))) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
            drop(commands);
        });
        if let Ok(mut ending) = self.ending.lock() {
            ending.insert(self.session_id.clone(), task);
        }
    }
}

impl Turn {
    /// The turn's id, known after the first event.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next event; `None` once the stream closed after turn_ended.
    pub async fn next(&mut self) -> Result<Option<pb::EngineEvent>, Error> {
        let Some(events) = self.events.as_mut() else {
            return Ok(None);
        };
        let message = events.message().await;
        match message {
            Ok(Some(response)) => {
                let event = response.event.unwrap_or_default();
                if self.id.is_empty() {
                    self.id = event.turn_id.clone();
                }
                self.ended |= matches!(event.payload, Some(Payload::TurnEnded(_)));
                Ok(Some(event))
            }
            Ok(None) => {
                self.ended = true;
                self.commands = None;
                Ok(None)
            }
            Err(status) => {
                self.ended = true; // the stream is over: nothing to cancel on drop
                self.commands = None;
                Err(status.into())
            }
        }
    }

    /// Answers an ask_user question (user_question) of the turn.
    pub fn answer(&self, request_id: &str, text: &str) -> Result<(), Error> {
        self.send(Command::UserAnswer(pb::UserAnswer { request_id: request_id.into(), text: text.into() }))
    }

    /// Sends a command on the turn's stream.
    pub fn send(&self, command: Command) -> Result<(), Error> {
        let request = pb::RunTurnRequest { command: Some(pb::EngineCommand { command: Some(command) }) };
        self.commands
            .as_ref()
            .and_then(|commands| commands.send(request).ok())
            .ok_or_else(|| Error::client(Code::FailedPrecondition, "the turn's stream is closed"))
    }

    /// Answers an approval request on the turn's stream.
    pub fn approve(&self, request_id: &str, decision: pb::Decision, feedback: &str) -> Result<(), Error> {
        self.send(Command::ApprovalDecision(pb::ApprovalDecision {
            request_id: request_id.into(),
            decision: decision.into(),
            feedback: feedback.into(),
        }))
    }

    /// Answers a loop-cap question on the turn's stream.
    pub fn decide_loop(&self, action: pb::LoopAction, extra_iterations: i32) -> Result<(), Error> {
        self.send(Command::LoopDecision(pb::LoopDecision { action: action.into(), extra_iterations }))
    }

    /// Adds input to the running turn: the model sees it at its next request (the event
    /// user_input_added shows where it landed); too late for the turn, it is queued as the
    /// session's next turn instead.
    pub fn steer(&self, text: &str) -> Result<(), Error> {
        self.send(Command::Steer(pb::Steer { text: text.to_string(), ..Default::default() }))
    }

    /// Asks the service to cancel the turn; the events end with turn_ended CANCELLED.
    pub fn cancel(&self) -> Result<(), Error> {
        self.send(Command::Cancel(pb::Cancel {}))
    }

    /// Answers the question an event asks with `handlers`.
    fn respond(&self, event: &pb::EngineEvent, handlers: &Handlers) -> Result<(), Error> {
        match &event.payload {
            Some(Payload::ApprovalRequested(request)) => match (handlers.on_approval)(request) {
                Some(answer) => self.approve(&request.request_id, answer.decision, &answer.feedback),
                None => Ok(()),
            },
            Some(Payload::LoopCapReached(question)) => match (handlers.on_loop_cap)(question) {
                Some(answer) => self.decide_loop(answer.action, answer.extra_iterations),
                None => Ok(()),
            },
            Some(Payload::UserQuestion(question)) => match (handlers.on_question)(question) {
                Some(text) => self.answer(&question.request_id, &text),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// A connection to a kodad service; cheap to clone.
#[derive(Clone)]
pub struct Client {
    raw: RawClient,
    ending: Ending,
}

impl Client {
    /// Connects to a kodad service at `target` ("host:port").
    pub async fn connect(target: &str) -> Result<Self, Error> {
        Self::connect_with(target, ConnectOptions::default()).await
    }

    /// Connects with a bearer token and/or TLS; `target` is "host:port" or "unix:///path".
    pub async fn connect_with(target: &str, options: ConnectOptions) -> Result<Self, Error> {
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let socket = target.strip_prefix("unix:").map(|p| format!("/{}", p.trim_start_matches('/')));
        let authority = if socket.is_some() { "localhost" } else { target };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{authority}"))?;
        if let Some(tls) = options.tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = match socket {
            Some(path) => {
                let connector = tower::service_fn(move |_: tonic::transport::Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                });
                endpoint.connect_with_connector(connector).await?
            }
            None => endpoint.connect().await?,
        };
        let token =
            match options.token {
                Some(token) => Some(format!("Bearer {token}").parse().map_err(|_| {
                    Error::client(Code::InvalidArgument, "the token is not valid header text")
                })?),
                None => None,
            };
        let raw =
            SessionServiceClient::with_interceptor(channel, Auth(token)).max_decoding_message_size(64 << 20);
        Ok(Client { raw, ending: Ending::default() })
    }

    /// The generated stub, for anything the wrapper does not cover.
    pub fn raw(&self) -> RawClient {
        self.raw.clone()
    }

    /// Describes the service.
    pub async fn server_info(&self) -> Result<pb::GetServerInfoResponse, Error> {
        Ok(self.raw().get_server_info(pb::GetServerInfoRequest {}).await?.into_inner())
    }

    /// Lists the models a provider serves: `provider`'s, else the provider of `session_id`,
    /// else (both empty) the service's default provider.
    pub async fn list_models(
        &self,
        provider: Option<pb::ProviderConfig>,
        session_id: &str,
    ) -> Result<Vec<pb::Model>, Error> {
        let request = pb::ListModelsRequest { provider, session_id: session_id.into() };
        Ok(self.raw().list_models(request).await?.into_inner().models)
    }

    /// Creates a session; `workspace` is required.
    pub async fn create_session(&self, session: pb::Session) -> Result<pb::Session, Error> {
        let request = pb::CreateSessionRequest { session: Some(session) };
        Ok(self.raw().create_session(request).await?.into_inner().session.unwrap_or_default())
    }

    /// Returns one session.
    pub async fn get_session(&self, session_id: &str) -> Result<pb::Session, Error> {
        let request = pb::GetSessionRequest { session_id: session_id.into() };
        Ok(self.raw().get_session(request).await?.into_inner().session.unwrap_or_default())
    }

    /// Every session carrying `labels` (all when empty), newest first.
    pub async fn sessions(&self, labels: HashMap<String, String>) -> Result<Vec<pb::Session>, Error> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let request =
                pb::ListSessionsRequest { page_token, labels: labels.clone(), ..Default::default() };
            let page = self.raw().list_sessions(request).await?.into_inner();
            out.extend(page.sessions);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    /// Changes the named fields (proto names, e.g. "approval_mode") of `session` (with its id).
    pub async fn update_session(&self, session: pb::Session, fields: &[&str]) -> Result<pb::Session, Error> {
        let request = pb::UpdateSessionRequest {
            session: Some(session),
            update_mask: Some(prost_types::FieldMask {
                paths: fields.iter().map(|f| f.to_string()).collect(),
            }),
        };
        Ok(self.raw().update_session(request).await?.into_inner().session.unwrap_or_default())
    }

    /// Deletes a session and everything of it.
    pub async fn delete_session(&self, session_id: &str) -> Result<(), Error> {
        self.raw().delete_session(pb::DeleteSessionRequest { session_id: session_id.into() }).await?;
        Ok(())
    }

    /// Copies a session with its history.
    pub async fn fork_session(&self, session_id: &str, title: &str) -> Result<pb::Session, Error> {
        let request = pb::ForkSessionRequest {
            session_id: session_id.into(),
            title: title.into(),
            ..Default::default()
        };
        Ok(self.raw().fork_session(request).await?.into_inner().session.unwrap_or_default())
    }

    /// The whole history of a session, oldest first.
    pub async fn messages(&self, session_id: &str) -> Result<Vec<pb::Message>, Error> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let request =
                pb::ListMessagesRequest { session_id: session_id.into(), page_size: 1000, page_token };
            let page = self.raw().list_messages(request).await?.into_inner();
            out.extend(page.messages);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    /// Sends a command to the running turn of a session, from any client; returns the turn id.
    pub async fn submit(&self, session_id: &str, command: Command) -> Result<String, Error> {
        let request = pb::SubmitCommandRequest {
            session_id: session_id.into(),
            command: Some(pb::EngineCommand { command: Some(command) }),
            ..Default::default()
        };
        Ok(self.raw().submit_command(request).await?.into_inner().turn_id)
    }

    /// Cancels the running turn of a session; returns its id.
    pub async fn cancel_turn(&self, session_id: &str) -> Result<String, Error> {
        let request = pb::CancelTurnRequest { session_id: session_id.into(), ..Default::default() };
        Ok(self.raw().cancel_turn(request).await?.into_inner().turn_id)
    }

    /// Cancels the running turn and empties the session's queue of turns.
    pub async fn cancel_turn_and_queue(&self, session_id: &str) -> Result<String, Error> {
        let request =
            pb::CancelTurnRequest { session_id: session_id.into(), clear_queue: true, ..Default::default() };
        Ok(self.raw().cancel_turn(request).await?.into_inner().turn_id)
    }

    /// Returns the workspace and/or history to just before `turn_id`; `unrewind` undoes it.
    pub async fn rewind(
        &self,
        session_id: &str,
        turn_id: &str,
        files: bool,
        history: bool,
        force: bool,
    ) -> Result<pb::SessionRewound, Error> {
        let request = pb::RewindSessionRequest {
            session_id: session_id.into(),
            to_turn_id: turn_id.into(),
            files,
            history,
            force,
            ..Default::default()
        };
        Ok(self.raw().rewind_session(request).await?.into_inner().rewound.unwrap_or_default())
    }

    /// Undoes the session's latest rewind.
    pub async fn unrewind(&self, session_id: &str, force: bool) -> Result<pb::SessionRewound, Error> {
        let request = pb::UnrewindSessionRequest { session_id: session_id.into(), force };
        Ok(self.raw().unrewind_session(request).await?.into_inner().rewound.unwrap_or_default())
    }

    /// The unified diff and per-file stats of what a turn changed in the workspace.
    pub async fn turn_diff(&self, session_id: &str, turn_id: &str) -> Result<pb::GetTurnDiffResponse, Error> {
        let request = pb::GetTurnDiffRequest { session_id: session_id.into(), turn_id: turn_id.into() };
        Ok(self.raw().get_turn_diff(request).await?.into_inner())
    }

    /// Takes a queued turn off the session's queue (NotFound once it has started).
    pub async fn remove_queued_turn(&self, session_id: &str, turn_id: &str) -> Result<(), Error> {
        let request = pb::RemoveQueuedTurnRequest { session_id: session_id.into(), turn_id: turn_id.into() };
        self.raw().remove_queued_turn(request).await?;
        Ok(())
    }

    /// The stored events of a session after `after_seq`, then live ones; drop the stream to stop.
    pub async fn watch(&self, session_id: &str, after_seq: i64) -> Result<EventStream, Error> {
        let request = pb::WatchSessionRequest { session_id: session_id.into(), after_seq };
        let responses = self.raw().watch_session(request).await?.into_inner();
        // The stream ends after its first error (a broken call does not heal).
        Ok(Box::pin(stream::unfold(Some(responses), |responses| async move {
            let mut responses = responses?;
            match responses.message().await {
                Ok(Some(response)) => Some((Ok(response.event.unwrap_or_default()), Some(responses))),
                Ok(None) => None,
                Err(status) => Some((Err(status.into()), None)),
            }
        })))
    }

    /// The files the session's tools created, modified or deleted (of one turn when `turn_id`
    /// is not empty), oldest first.
    pub async fn file_changes(&self, session_id: &str, turn_id: &str) -> Result<Vec<pb::FileChange>, Error> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListFileChangesRequest {
                session_id: session_id.into(),
                turn_id: turn_id.into(),
                page_size: 1000,
                page_token,
            };
            let page = self.raw().list_file_changes(request).await?.into_inner();
            out.extend(page.changes);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    /// Summarises the session's older history now (as a turn of its own).
    pub async fn compact(&self, session_id: &str) -> Result<pb::CompactSessionResponse, Error> {
        let request = pb::CompactSessionRequest { session_id: session_id.into() };
        Ok(self.raw().compact_session(request).await?.into_inner())
    }

    /// The agent profiles sessions may use (with a workspace, its own ones too).
    pub async fn agent_profiles(&self, workspace: &str) -> Result<Vec<pb::AgentProfile>, Error> {
        let request = pb::ListAgentProfilesRequest { workspace: workspace.into() };
        Ok(self.raw().list_agent_profiles(request).await?.into_inner().profiles)
    }

    /// One agent profile by name (with a workspace, its own ones included).
    pub async fn agent_profile(&self, name: &str, workspace: &str) -> Result<pb::AgentProfile, Error> {
        let request = pb::GetAgentProfileRequest { name: name.into(), workspace: workspace.into() };
        Ok(self.raw().get_agent_profile(request).await?.into_inner().profile.unwrap_or_default())
    }

    /// Starts a turn to drive step by step with [`Turn::next`], [`Turn::approve`] and friends.
    pub async fn start_turn(
        &self,
        session_id: &str,
        text: &str,
        continue_on_disconnect: bool,
    ) -> Result<Turn, Error> {
        let on_disconnect = if continue_on_disconnect {
            pb::DisconnectPolicy::Continue
        } else {
            pb::DisconnectPolicy::Cancel
        };
        self.start_turn_with(pb::StartTurn {
            session_id: session_id.into(),
            text: text.into(),
            on_disconnect: on_disconnect.into(),
            ..Default::default()
        })
        .await
    }

    /// Starts a turn from a whole StartTurn (when_busy, output_schema_json, budgets...), driven
    /// step by step like `start_turn`; read a structured answer with `output`.
    pub async fn start_turn_with(&self, start: pb::StartTurn) -> Result<Turn, Error> {
        let previous = self.ending.lock().ok().and_then(|mut ending| ending.remove(&start.session_id));
        if let Some(previous) = previous {
            let _ = previous.await; // this client's turn of the session, left early: ended first
        }
        let session_id = start.session_id.clone();
        let (commands, receiver) = mpsc::unbounded_channel();
        let start = Command::StartTurn(start);
        let request = pb::RunTurnRequest { command: Some(pb::EngineCommand { command: Some(start) }) };
        commands.send(request).expect("the receiver is alive");
        let requests = UnboundedReceiverStream::new(receiver);
        let events = self.raw().run_turn(requests).await?.into_inner();
        Ok(Turn {
            commands: Some(commands),
            events: Some(events),
            id: String::new(),
            session_id,
            ended: false,
            ending: self.ending.clone(),
        })
    }

    /// Runs a turn as a stream of its events until turn_ended, answering questions with
    /// `handlers`. Dropping the stream early cancels the turn (see [`Turn`]).
    pub async fn run_turn(
        &self,
        session_id: &str,
        text: &str,
        handlers: Handlers,
    ) -> Result<EventStream, Error> {
        let turn = self.start_turn(session_id, text, handlers.continue_on_disconnect).await?;
        Ok(Box::pin(stream::unfold(Some((turn, handlers)), |state| async move {
            let (mut turn, handlers) = state?;
            let answered = match turn.next().await {
                Ok(Some(event)) => turn.respond(&event, &handlers).map(|()| event),
                Ok(None) => return None,
                Err(error) => Err(error),
            };
            match answered {
                Ok(event) => Some((Ok(event), Some((turn, handlers)))),
                Err(error) => Some((Err(error), None)),
            }
        })))
    }
}
