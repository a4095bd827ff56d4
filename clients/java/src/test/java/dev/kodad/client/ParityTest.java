package dev.kodad.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.ProviderConfig;
import dev.kodad.koda.v1.ProviderKind;
import dev.kodad.koda.v1.Session;
import dev.kodad.koda.v1.SessionServiceGrpc;
import dev.kodad.koda.v1.TurnEndReason;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Every RPC has a wrapper; turns answer questions, end when left, and take commands after. */
class ParityTest {
  /** The KodadClient method that wraps each RPC of koda.v1.SessionService. */
  private static final Map<String, String> WRAPPERS =
      Map.ofEntries(
          Map.entry("GetServerInfo", "serverInfo"),
          Map.entry("ListModels", "listModels"),
          Map.entry("CreateSession", "createSession"),
          Map.entry("GetSession", "getSession"),
          Map.entry("ListSessions", "sessions"),
          Map.entry("UpdateSession", "updateSession"),
          Map.entry("DeleteSession", "deleteSession"),
          Map.entry("ForkSession", "forkSession"),
          Map.entry("ListMessages", "messages"),
          Map.entry("ListFileChanges", "fileChanges"),
          Map.entry("RunTurn", "runTurn"),
          Map.entry("SubmitCommand", "submit"),
          Map.entry("CancelTurn", "cancelTurn"),
          Map.entry("RewindSession", "rewind"),
          Map.entry("UnrewindSession", "unrewind"),
          Map.entry("GetTurnDiff", "turnDiff"),
          Map.entry("RemoveQueuedTurn", "removeQueuedTurn"),
          Map.entry("WatchSession", "watch"),
          Map.entry("ListAgentProfiles", "agentProfiles"),
          Map.entry("GetAgentProfile", "agentProfile"),
          Map.entry("CompactSession", "compact"));

  private static KodadServer server;
  private static KodadClient client;

  @BeforeAll
  static void start() throws IOException {
    server = KodadServer.start();
    client = KodadClient.connect(server.address);
  }

  @AfterAll
  static void stop() {
    client.close();
    server.close();
  }

  @Test
  void everyRpcHasAWrapper() {
    Set<String> rpcs =
        SessionServiceGrpc.getServiceDescriptor().getMethods().stream()
            .map(MethodDescriptor::getBareMethodName)
            .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(new TreeSet<>(WRAPPERS.keySet()), rpcs, "an RPC without a wrapper, or a stale one");
    Set<String> methods =
        Arrays.stream(KodadClient.class.getMethods()).map(Method::getName).collect(Collectors.toSet());
    WRAPPERS.forEach(
        (rpc, method) -> assertTrue(methods.contains(method), rpc + ": no KodadClient." + method));
  }

  static Session scripted(String rounds) throws IOException {
    return client.createSession(
        Session.newBuilder()
            .setWorkspace(Files.createTempDirectory("kodad-ws-").toString())
            .setProvider(
                ProviderConfig.newBuilder()
                    .setKind(ProviderKind.PROVIDER_KIND_SCRIPTED)
                    .setScriptJson("{\"rounds\":" + rounds + "}"))
            .build());
  }

  @Test
  void questionsGetTheHandlersAnswerOrNoAnswer() throws IOException {
    String ask =
        "[{\"tool_call\":{\"name\":\"ask_user\",\"id\":\"q\",\"arguments\":{\"question\":\"Which?\","
            + "\"choices\":[\"a\",\"b\"]}}}]";
    Session session = scripted("[" + ask + ",[{\"text\":\"ok\"}]," + ask + ",[{\"text\":\"ok\"}]]");
    List<String> outputs = new ArrayList<>();
    Handlers pick = Handlers.defaults().onQuestion(question -> question.getChoices(1));
    for (Handlers handlers : List.of(pick, Handlers.defaults())) {
      try (Turn turn = client.runTurn(session.getId(), "go", handlers)) {
        for (EngineEvent event : turn) {
          if (event.hasToolCallFinished()) {
            outputs.add(event.getToolCallFinished().getOutput());
          }
        }
      }
    }
    assertEquals(List.of("b", Handlers.NO_ANSWER), outputs);
  }

  @Test
  void leavingATurnEarlyCancelsItAndCommandsAfterTheEndAreDropped() throws IOException {
    Session session =
        scripted("[[{\"text\":\"long\"},{\"delay_ms\":600000}],[{\"text\":\"next\"}]]");
    try (Turn turn = client.runTurn(session.getId(), "first", Handlers.defaults())) {
      for (EngineEvent event : turn) {
        if (event.hasTextDelta()) {
          break;
        }
      }
    }
    TurnEndReason reason = TurnEndReason.TURN_END_REASON_UNSPECIFIED;
    try (Turn turn = client.runTurn(session.getId(), "second", Handlers.defaults())) {
      for (EngineEvent event : turn) {
        if (event.hasTurnEnded()) {
          reason = event.getTurnEnded().getReason();
        }
      }
      turn.cancel(); // after the end: nothing to cancel, and no exception
    }
    assertEquals(TurnEndReason.TURN_END_REASON_COMPLETED, reason);
  }

  @Test
  void aTimeoutIsADeadlineExceededWithItsCause() {
    KodadException e =
        assertThrows(
            KodadException.class, () -> client.withTimeout(Duration.ofNanos(1)).getSession("s_x"));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
    assertTrue(e.getCause() instanceof io.grpc.StatusRuntimeException, String.valueOf(e.getCause()));
  }
}
