package dev.kodad.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kodad.koda.v1.Decision;
import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.ProviderConfig;
import dev.kodad.koda.v1.ProviderKind;
import dev.kodad.koda.v1.Session;
import dev.kodad.koda.v1.TurnEndReason;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The wrapper's own behaviour against a live kodad: errors, handlers, observers, the example. */
class ClientTest {
  private static final String WRITE_THEN_DONE =
      "{\"rounds\":[[{\"tool_call\":{\"name\":\"write_file\",\"id\":\"w\","
          + "\"arguments\":{\"path\":\"a.txt\",\"content\":\"x\"}}}],[{\"text\":\"done\"}]]}";
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

  static Session scripted(String script) throws IOException {
    return client.createSession(
        Session.newBuilder()
            .setWorkspace(Files.createTempDirectory("kodad-ws-").toString())
            .setProvider(
                ProviderConfig.newBuilder()
                    .setKind(ProviderKind.PROVIDER_KIND_SCRIPTED)
                    .setScriptJson(script))
            .build());
  }

  @Test
  void errorsCarryTheCodeAndTheServicesMessage() {
    KodadException e = assertThrows(KodadException.class, () -> client.getSession("s_missing"));
    assertEquals(Status.Code.NOT_FOUND, e.code());
    assertTrue(e.description().contains("s_missing"), e.description());
    assertEquals("SESSION_NOT_FOUND", e.reason());
    assertEquals(java.util.Map.of("session_id", "s_missing"), e.metadata());
    KodadException invalid =
        assertThrows(KodadException.class, () -> client.createSession(Session.getDefaultInstance()));
    assertEquals(Status.Code.INVALID_ARGUMENT, invalid.code());
  }

  @Test
  void sessionsListByLabelAndDeleteRemoves() throws IOException {
    String label = "t" + System.nanoTime();
    Session created =
        client.createSession(
            Session.newBuilder()
                .setWorkspace(Files.createTempDirectory("kodad-ws-").toString())
                .putLabels("suite", label)
                .build());
    List<String> listed = new ArrayList<>();
    client.sessions(Map.of("suite", label)).forEach(s -> listed.add(s.getId()));
    assertEquals(List.of(created.getId()), listed);
    client.deleteSession(created.getId());
    assertEquals(
        Status.Code.NOT_FOUND,
        assertThrows(KodadException.class, () -> client.getSession(created.getId())).code());
  }

  @Test
  void withoutHandlersAnApprovalIsRejected() throws IOException {
    Session session = scripted(WRITE_THEN_DONE);
    List<EngineEvent> events = new ArrayList<>();
    try (Turn turn = client.runTurn(session.getId(), "write", Handlers.defaults())) {
      turn.forEachRemaining(events::add);
    }
    EngineEvent resolved =
        events.stream().filter(EngineEvent::hasApprovalResolved).findFirst().orElseThrow();
    assertEquals(Decision.DECISION_REJECT, resolved.getApprovalResolved().getDecision());
    assertTrue(events.get(events.size() - 1).hasTurnEnded());
  }

  @Test
  void anObserverReceivesTheTurnAndHandlersApprove() throws Exception {
    Session session = scripted(WRITE_THEN_DONE);
    List<EngineEvent> events = new CopyOnWriteArrayList<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    client.runTurn(
        session.getId(),
        "write",
        Handlers.defaults().onApproval(r -> Handlers.ApprovalAnswer.of(Decision.DECISION_APPROVE)),
        new StreamObserver<>() {
          @Override
          public void onNext(EngineEvent event) {
            events.add(event);
          }

          @Override
          public void onError(Throwable error) {
            done.completeExceptionally(error);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        });
    done.get(60, TimeUnit.SECONDS);
    EngineEvent ended = events.get(events.size() - 1);
    assertEquals(TurnEndReason.TURN_END_REASON_COMPLETED, ended.getTurnEnded().getReason());
    assertEquals(
        "x", Files.readString(Path.of(client.getSession(session.getId()).getWorkspace(), "a.txt")));
  }

  @Test
  void closingATurnCancelsItAndWatchShowsTheEnd() throws Exception {
    Session session = scripted(WRITE_THEN_DONE);
    try (Turn turn = client.startTurn(session.getId(), "write", false)) {
      while (!turn.next().hasApprovalRequested()) {
        // read up to the question, then abandon the stream
      }
    }
    CompletableFuture<EngineEvent> ended = new CompletableFuture<>();
    try (AutoCloseable watch =
        client.watch(
            session.getId(),
            0,
            new StreamObserver<>() {
              @Override
              public void onNext(EngineEvent event) {
                if (event.hasTurnEnded()) {
                  ended.complete(event);
                }
              }

              @Override
              public void onError(Throwable error) {
                ended.completeExceptionally(error);
              }

              @Override
              public void onCompleted() {}
            })) {
      EngineEvent event = ended.get(60, TimeUnit.SECONDS);
      assertNotNull(event);
      assertEquals(TurnEndReason.TURN_END_REASON_CANCELLED, event.getTurnEnded().getReason());
    }
  }

  @Test
  void theReadmeExampleRuns() throws IOException {
    PrintStream original = System.out;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      Quickstart.main(
          new String[] {server.address, Files.createTempDirectory("kodad-ws-").toString()});
    } finally {
      System.setOut(original);
    }
    assertEquals("You said: hello from Java", out.toString(StandardCharsets.UTF_8).trim());
  }

  @Test
  void theReadmeExampleIsTheQuickstartProgram() throws IOException {
    String readme = Files.readString(KodadServer.REPOSITORY.resolve("clients/java/README.md"));
    String block = readme.substring(readme.indexOf("```java\n") + 8, readme.indexOf("```\n", readme.indexOf("```java\n")));
    String program =
        Files.readString(
            KodadServer.REPOSITORY.resolve(
                "clients/java/src/test/java/dev/kodad/client/Quickstart.java"));
    for (String line : block.split("\n")) {
      String code = line.strip()
          .replace("\"127.0.0.1:50051\"", "target")
          .replace("\"/path/to/repo\"", "workspace");
      assertTrue(program.contains(code), "Quickstart lacks: " + code);
    }
  }

  @Test
  void questionsGetTheHandlersAnswerOrNoAnswer() throws IOException {
    String ask =
        "[{\"tool_call\":{\"name\":\"ask_user\",\"id\":\"q\",\"arguments\":{\"question\":\"Which?\","
            + "\"choices\":[\"a\",\"b\"]}}}]";
    Session session = scripted("{\"rounds\":[" + ask + ",[{\"text\":\"ok\"}]," + ask + ",[{\"text\":\"ok\"}]]}");
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
        scripted("{\"rounds\":[[{\"text\":\"long\"},{\"delay_ms\":600000}],[{\"text\":\"next\"}]]}");
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
