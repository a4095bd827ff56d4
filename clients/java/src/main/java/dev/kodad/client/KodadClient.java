package dev.kodad.client;

import com.google.protobuf.FieldMask;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import dev.kodad.koda.v1.AgentProfile;
import dev.kodad.koda.v1.CancelTurnRequest;
import dev.kodad.koda.v1.CompactSessionRequest;
import dev.kodad.koda.v1.CompactSessionResponse;
import dev.kodad.koda.v1.FileChange;
import dev.kodad.koda.v1.GetAgentProfileRequest;
import dev.kodad.koda.v1.ListAgentProfilesRequest;
import dev.kodad.koda.v1.ListFileChangesRequest;
import dev.kodad.koda.v1.ListFileChangesResponse;
import dev.kodad.koda.v1.CreateSessionRequest;
import dev.kodad.koda.v1.DeleteSessionRequest;
import dev.kodad.koda.v1.DisconnectPolicy;
import dev.kodad.koda.v1.EngineCommand;
import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.ForkSessionRequest;
import dev.kodad.koda.v1.GetServerInfoRequest;
import dev.kodad.koda.v1.GetServerInfoResponse;
import dev.kodad.koda.v1.GetSessionRequest;
import dev.kodad.koda.v1.ListMessagesRequest;
import dev.kodad.koda.v1.ListModelsRequest;
import dev.kodad.koda.v1.ListMessagesResponse;
import dev.kodad.koda.v1.ListSessionsRequest;
import dev.kodad.koda.v1.ListSessionsResponse;
import dev.kodad.koda.v1.Message;
import dev.kodad.koda.v1.Model;
import dev.kodad.koda.v1.ProviderConfig;
import dev.kodad.koda.v1.GetTurnDiffRequest;
import dev.kodad.koda.v1.GetTurnDiffResponse;
import dev.kodad.koda.v1.RemoveQueuedTurnRequest;
import dev.kodad.koda.v1.RewindSessionRequest;
import dev.kodad.koda.v1.SessionRewound;
import dev.kodad.koda.v1.UnrewindSessionRequest;
import dev.kodad.koda.v1.RunTurnRequest;
import dev.kodad.koda.v1.RunTurnResponse;
import dev.kodad.koda.v1.Session;
import dev.kodad.koda.v1.SessionServiceGrpc;
import dev.kodad.koda.v1.StartTurn;
import dev.kodad.koda.v1.SubmitCommandRequest;
import dev.kodad.koda.v1.TurnEnded;
import dev.kodad.koda.v1.UpdateSessionRequest;
import dev.kodad.koda.v1.WatchSessionRequest;
import dev.kodad.koda.v1.WatchSessionResponse;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * A connection to a kodad service. Close it when done.
 *
 * <pre>{@code
 * try (KodadClient client = KodadClient.connect("127.0.0.1:50051")) {
 *   Session session = client.createSession(Session.newBuilder().setWorkspace("/repo").build());
 *   try (Turn turn = client.runTurn(session.getId(), "add a README", Handlers.defaults())) {
 *     turn.forEachRemaining(event -> System.out.print(event.getTextDelta().getText()));
 *   }
 * }
 * }</pre>
 *
 * <p>Failed calls throw {@link KodadException} carrying the gRPC status code.
 */
public final class KodadClient implements AutoCloseable {
  /**
   * The koda.v1 contract version this client was built for; compare it with {@code
   * serverInfo().getContractVersion()} (major.minor) to detect a service of another release.
   */
  public static final String CONTRACT_VERSION = "0.2.0";

  private final ManagedChannel channel;
  private final SessionServiceGrpc.SessionServiceBlockingStub blocking;
  private final SessionServiceGrpc.SessionServiceStub async;
  private final java.time.Duration timeout;

  private KodadClient(
      ManagedChannel channel,
      SessionServiceGrpc.SessionServiceBlockingStub blocking,
      SessionServiceGrpc.SessionServiceStub async,
      java.time.Duration timeout) {
    this.channel = channel;
    this.blocking = blocking;
    this.async = async;
    this.timeout = timeout;
  }

  /**
   * A view of this client whose unary calls (not turns or watches) fail with DEADLINE_EXCEEDED
   * after timeout. It shares the connection: close the original client, not the view.
   */
  public KodadClient withTimeout(java.time.Duration timeout) {
    return new KodadClient(channel, blocking, async, timeout);
  }

  private SessionServiceGrpc.SessionServiceBlockingStub blocking() {
    return timeout == null
        ? blocking
        : blocking.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private KodadClient(ManagedChannel channel, String token) {
    this.channel = channel;
    SessionServiceGrpc.SessionServiceBlockingStub blocking =
        SessionServiceGrpc.newBlockingStub(channel);
    SessionServiceGrpc.SessionServiceStub async = SessionServiceGrpc.newStub(channel);
    if (token != null && !token.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(
          Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
      blocking = blocking.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      async = async.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    this.blocking = blocking;
    this.async = async;
    this.timeout = null;
  }

  /** Connects to a kodad service at target ("host:port") without TLS. */
  public static KodadClient connect(String target) {
    return connect(target, InsecureChannelCredentials.create(), null);
  }

  /**
   * Connects with the given credentials (e.g. {@code TlsChannelCredentials} with a client
   * certificate for mutual TLS) and an optional bearer token sent with every call.
   */
  public static KodadClient connect(String target, ChannelCredentials credentials, String token) {
    ManagedChannel channel =
        Grpc.newChannelBuilder(target, credentials).maxInboundMessageSize(64 << 20).build();
    return new KodadClient(channel, token);
  }

  /** The generated blocking stub, for anything the wrapper does not cover. */
  public SessionServiceGrpc.SessionServiceBlockingStub raw() {
    return blocking;
  }

  /** The generated asynchronous stub. */
  public SessionServiceGrpc.SessionServiceStub rawAsync() {
    return async;
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (sidecar != null) {
      sidecar.stop(java.time.Duration.ofSeconds(10));
    }
  }

  private Sidecar sidecar;

  /**
   * Starts `kodad serve` as a child process owned by the returned client (see {@link
   * Sidecar}): on a free port or a unix socket, with a per-launch token; closing the client stops
   * it.
   *
   * @throws Sidecar.SidecarException when the binary is missing, fails or is not ready in time
   */
  public static KodadClient spawnSidecar(Sidecar.Options options) {
    Sidecar sidecar = Sidecar.start(options);
    KodadClient client =
        connect(sidecar.address(), InsecureChannelCredentials.create(), sidecar.token());
    client.sidecar = sidecar;
    return client;
  }

  /** The kodad this client spawned, or null. */
  public Sidecar sidecar() {
    return sidecar;
  }

  private static <T> T call(Supplier<T> run) {
    try {
      return run.get();
    } catch (RuntimeException e) {
      throw KodadException.from(e);
    }
  }

  /** Describes the service. */
  public GetServerInfoResponse serverInfo() {
    return call(() -> blocking().getServerInfo(GetServerInfoRequest.getDefaultInstance()));
  }

  /**
   * Lists the models a provider serves: {@code provider}'s, else (null) the provider of {@code
   * sessionId}, else (empty) the service's default provider.
   */
  public java.util.List<Model> listModels(ProviderConfig provider, String sessionId) {
    ListModelsRequest.Builder request = ListModelsRequest.newBuilder().setSessionId(sessionId);
    if (provider != null) {
      request.setProvider(provider);
    }
    return call(() -> blocking().listModels(request.build())).getModelsList();
  }

  /** Creates a session; its workspace is required. */
  public Session createSession(Session session) {
    return call(
            () ->
                blocking().createSession(
                    CreateSessionRequest.newBuilder().setSession(session).build()))
        .getSession();
  }

  /** Returns one session. */
  public Session getSession(String sessionId) {
    return call(
            () -> blocking().getSession(GetSessionRequest.newBuilder().setSessionId(sessionId).build()))
        .getSession();
  }

  /** Every session carrying labels (all when empty), newest first, fetched page by page. */
  public Iterable<Session> sessions(Map<String, String> labels) {
    return () ->
        new Iterator<>() {
          private Iterator<Session> page = List.<Session>of().iterator();
          private String token;

          @Override
          public boolean hasNext() {
            while (!page.hasNext() && !"".equals(token)) {
              ListSessionsRequest.Builder request =
                  ListSessionsRequest.newBuilder().putAllLabels(labels);
              if (token != null) {
                request.setPageToken(token);
              }
              ListSessionsResponse response = call(() -> blocking().listSessions(request.build()));
              page = response.getSessionsList().iterator();
              token = response.getNextPageToken();
            }
            return page.hasNext();
          }

          @Override
          public Session next() {
            if (!hasNext()) {
              throw new NoSuchElementException();
            }
            return page.next();
          }
        };
  }

  /** Changes the named fields (proto names, e.g. "approval_mode") of a session carrying its id. */
  public Session updateSession(Session session, String... fields) {
    UpdateSessionRequest request =
        UpdateSessionRequest.newBuilder()
            .setSession(session)
            .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(fields)))
            .build();
    return call(() -> blocking().updateSession(request)).getSession();
  }

  /** Deletes a session and everything of it. */
  public void deleteSession(String sessionId) {
    call(() -> blocking().deleteSession(DeleteSessionRequest.newBuilder().setSessionId(sessionId).build()));
  }

  /** Copies a session with its history. */
  public Session forkSession(String sessionId, String title) {
    ForkSessionRequest request =
        ForkSessionRequest.newBuilder().setSessionId(sessionId).setTitle(title).build();
    return call(() -> blocking().forkSession(request)).getSession();
  }

  /** The whole history of a session, oldest first. */
  public List<Message> messages(String sessionId) {
    List<Message> out = new ArrayList<>();
    String token = "";
    do {
      ListMessagesRequest request =
          ListMessagesRequest.newBuilder()
              .setSessionId(sessionId)
              .setPageSize(1000)
              .setPageToken(token)
              .build();
      ListMessagesResponse page = call(() -> blocking().listMessages(request));
      out.addAll(page.getMessagesList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  /** Sends a command to the running turn of a session, from any client; returns the turn id. */
  public String submit(String sessionId, EngineCommand command) {
    SubmitCommandRequest request =
        SubmitCommandRequest.newBuilder().setSessionId(sessionId).setCommand(command).build();
    return call(() -> blocking().submitCommand(request)).getTurnId();
  }

  /** Cancels the running turn of a session; returns its id. */
  public String cancelTurn(String sessionId) {
    return cancelTurn(sessionId, false);
  }

  /** Cancels the running turn; with clearQueue the session's queued turns too. */
  public String cancelTurn(String sessionId, boolean clearQueue) {
    CancelTurnRequest request =
        CancelTurnRequest.newBuilder().setSessionId(sessionId).setClearQueue(clearQueue).build();
    return call(() -> blocking().cancelTurn(request)).getTurnId();
  }

  /** Returns the workspace and/or history to just before a turn; unrewind undoes it. */
  public SessionRewound rewind(
      String sessionId, String turnId, boolean files, boolean history, boolean force) {
    RewindSessionRequest request =
        RewindSessionRequest.newBuilder()
            .setSessionId(sessionId)
            .setToTurnId(turnId)
            .setFiles(files)
            .setHistory(history)
            .setForce(force)
            .build();
    return call(() -> blocking().rewindSession(request)).getRewound();
  }

  /** Undoes the session's latest rewind. */
  public SessionRewound unrewind(String sessionId, boolean force) {
    UnrewindSessionRequest request =
        UnrewindSessionRequest.newBuilder().setSessionId(sessionId).setForce(force).build();
    return call(() -> blocking().unrewindSession(request)).getRewound();
  }

  /** The unified diff and per-file stats of what a turn changed in the workspace. */
  public GetTurnDiffResponse turnDiff(String sessionId, String turnId) {
    GetTurnDiffRequest request =
        GetTurnDiffRequest.newBuilder().setSessionId(sessionId).setTurnId(turnId).build();
    return call(() -> blocking().getTurnDiff(request));
  }

  /**
   * The files the session's tools created, modified or deleted (of one turn when turnId is not
   * empty), oldest first.
   */
  public List<FileChange> fileChanges(String sessionId, String turnId) {
    List<FileChange> out = new ArrayList<>();
    String token = "";
    do {
      ListFileChangesRequest request =
          ListFileChangesRequest.newBuilder()
              .setSessionId(sessionId)
              .setTurnId(turnId)
              .setPageSize(1000)
              .setPageToken(token)
              .build();
      ListFileChangesResponse page = call(() -> blocking().listFileChanges(request));
      out.addAll(page.getChangesList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  /** Summarises the session's older history now (as a turn of its own). */
  public CompactSessionResponse compact(String sessionId) {
    CompactSessionRequest request = CompactSessionRequest.newBuilder().setSessionId(sessionId).build();
    return call(() -> blocking().compactSession(request));
  }

  /** The agent profiles sessions may use (with a workspace, its own ones too). */
  public List<AgentProfile> agentProfiles(String workspace) {
    ListAgentProfilesRequest request =
        ListAgentProfilesRequest.newBuilder().setWorkspace(workspace).build();
    return call(() -> blocking().listAgentProfiles(request)).getProfilesList();
  }

  /** One agent profile by name (with a workspace, its own ones included). */
  public AgentProfile agentProfile(String name, String workspace) {
    GetAgentProfileRequest request =
        GetAgentProfileRequest.newBuilder().setName(name).setWorkspace(workspace).build();
    return call(() -> blocking().getAgentProfile(request)).getProfile();
  }

  /** Takes a queued turn off the session's queue (NOT_FOUND once it has started). */
  public void removeQueuedTurn(String sessionId, String turnId) {
    RemoveQueuedTurnRequest request =
        RemoveQueuedTurnRequest.newBuilder().setSessionId(sessionId).setTurnId(turnId).build();
    call(() -> blocking().removeQueuedTurn(request));
  }

  /**
   * The stored events of a session after afterSeq, then live ones, as a blocking iterator; close
   * it to stop watching.
   */
  public EventStream watch(String sessionId, long afterSeq) {
    WatchSessionRequest request =
        WatchSessionRequest.newBuilder().setSessionId(sessionId).setAfterSeq(afterSeq).build();
    io.grpc.Context.CancellableContext context = io.grpc.Context.current().withCancellation();
    io.grpc.Context previous = context.attach();
    try {
      return new EventStream(call(() -> blocking().watchSession(request)), context);
    } finally {
      context.detach(previous);
    }
  }

  /** Watches a session with an observer; returns a handle whose close() stops watching. */
  public AutoCloseable watch(String sessionId, long afterSeq, StreamObserver<EngineEvent> observer) {
    WatchSessionRequest request =
        WatchSessionRequest.newBuilder().setSessionId(sessionId).setAfterSeq(afterSeq).build();
    ClientCallStreamObserver<?>[] call = new ClientCallStreamObserver<?>[1];
    async.watchSession(
        request,
        new ClientResponseObserver<WatchSessionRequest, WatchSessionResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<WatchSessionRequest> stream) {
            call[0] = stream;
          }

          @Override
          public void onNext(WatchSessionResponse response) {
            observer.onNext(response.getEvent());
          }

          @Override
          public void onError(Throwable error) {
            observer.onError(KodadException.from(error));
          }

          @Override
          public void onCompleted() {
            observer.onCompleted();
          }
        });
    return () -> call[0].cancel("closed by the client", null);
  }

  private static RunTurnRequest start(String sessionId, String text, Handlers handlers) {
    DisconnectPolicy policy =
        handlers.continueOnDisconnect
            ? DisconnectPolicy.DISCONNECT_POLICY_CONTINUE
            : DisconnectPolicy.DISCONNECT_POLICY_CANCEL;
    return RunTurnRequest.newBuilder()
        .setCommand(
            EngineCommand.newBuilder()
                .setStartTurn(
                    StartTurn.newBuilder()
                        .setSessionId(sessionId)
                        .setText(text)
                        .setOnDisconnect(policy)))
        .build();
  }

  /**
   * Starts a turn driven step by step: iterate its events and answer questions yourself with
   * {@link Turn#approve} and {@link Turn#decideLoop}.
   */
  public Turn startTurn(String sessionId, String text, boolean continueOnDisconnect) {
    return startTurn(
        start(sessionId, text, Handlers.defaults().continueOnDisconnect(continueOnDisconnect))
            .getCommand()
            .getStartTurn());
  }

  /**
   * Starts a turn from a whole StartTurn (when_busy, output_schema_json, budgets...), driven step
   * by step like {@link #startTurn(String, String, boolean)}.
   */
  public Turn startTurn(StartTurn start) {
    Turn turn = new Turn(null);
    async.runTurn(turn.observer);
    turn.requests.onNext(
        RunTurnRequest.newBuilder()
            .setCommand(EngineCommand.newBuilder().setStartTurn(start))
            .build());
    return turn;
  }

  /**
   * The answer of a turn started with an output schema, as a JSON value; null when it has none.
   */
  public static Value output(TurnEnded ended) {
    if (ended.getOutputJson().isEmpty()) {
      return null;
    }
    Value.Builder value = Value.newBuilder();
    try {
      JsonFormat.parser().merge(ended.getOutputJson(), value);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("output_json is not JSON: " + e.getMessage(), e);
    }
    return value.build();
  }

  /**
   * Runs a turn: iterate its events (blocking) until turn_ended; questions are answered with
   * handlers as they arrive. Closing the turn early abandons the stream.
   */
  public Turn runTurn(String sessionId, String text, Handlers handlers) {
    Turn turn = new Turn(handlers);
    async.runTurn(turn.observer);
    turn.requests.onNext(start(sessionId, text, handlers));
    return turn;
  }

  /**
   * Runs a turn delivering its events to an observer (on gRPC's threads); questions are answered
   * with handlers. The returned stream sends commands and closes.
   */
  public TurnStream runTurn(
      String sessionId, String text, Handlers handlers, StreamObserver<EngineEvent> observer) {
    TurnStream turn = new TurnStream(handlers) {};
    async.runTurn(
        new ClientResponseObserver<RunTurnRequest, RunTurnResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<RunTurnRequest> stream) {
            turn.requests = stream;
          }

          @Override
          public void onNext(RunTurnResponse response) {
            observer.onNext(response.getEvent());
            turn.respond(response.getEvent());
          }

          @Override
          public void onError(Throwable error) {
            turn.finished = true;
            observer.onError(KodadException.from(error));
          }

          @Override
          public void onCompleted() {
            turn.finished = true;
            turn.send(null);
            observer.onCompleted();
          }
        });
    turn.requests.onNext(start(sessionId, text, handlers));
    return turn;
  }
}
