package dev.kodad.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import dev.kodad.koda.v1.ApprovalDecision;
import dev.kodad.koda.v1.ApprovalMode;
import dev.kodad.koda.v1.ApprovalRequested;
import dev.kodad.koda.v1.ApprovalRule;
import dev.kodad.koda.v1.Decision;
import dev.kodad.koda.v1.EngineCommand;
import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.LoopAction;
import dev.kodad.koda.v1.LoopDecision;
import dev.kodad.koda.v1.ProviderConfig;
import dev.kodad.koda.v1.ProviderKind;
import dev.kodad.koda.v1.Session;
import dev.kodad.koda.v1.StartTurn;
import dev.kodad.koda.v1.UserAnswer;
import dev.kodad.koda.v1.UserQuestion;
import dev.kodad.koda.v1.Steer;
import dev.kodad.koda.v1.ToolCallFinished;
import dev.kodad.koda.v1.TurnEnded;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** Runs the shared scenarios (tests/conformance/*.json) against a live kodad. */
class ConformanceTest {
  private static final ObjectMapper JSON = new ObjectMapper();
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

  /** The proto name of an event's payload ("text_delta"). */
  static String kind(EngineEvent event) {
    return event.getPayloadCase().name().toLowerCase(Locale.ROOT);
  }

  static KodadException expectCode(String code, Runnable run) {
    KodadException e = assertThrows(KodadException.class, run::run);
    assertEquals(Status.Code.valueOf(code), e.code(), e.getMessage());
    return e;
  }

  @TestFactory
  Stream<DynamicTest> scenarios() throws IOException {
    List<Path> paths;
    try (Stream<Path> files = Files.list(KodadServer.REPOSITORY.resolve("tests/conformance"))) {
      paths = files.filter(p -> p.toString().endsWith(".json")).sorted().toList();
    }
    assertFalse(paths.isEmpty(), "no scenarios found");
    return paths.stream()
        .map(
            path ->
                DynamicTest.dynamicTest(
                    path.getFileName().toString().replace(".json", ""),
                    () -> new Runner(JSON.readTree(path.toFile())).run()));
  }

  static final class Runner {
    final JsonNode scenario;
    final List<EngineEvent> events = new ArrayList<>();
    Path workspace;
    Session session;
    Turn turn;

    Runner(JsonNode scenario) {
      this.scenario = scenario;
    }

    void run() throws IOException {
      JsonNode settings = scenario.path("session");
      workspace = Files.createTempDirectory("kodad-ws-");
      for (Iterator<Map.Entry<String, JsonNode>> it = settings.path("files").fields();
          it.hasNext(); ) {
        Map.Entry<String, JsonNode> file = it.next();
        Path full = workspace.resolve(file.getKey());
        Files.createDirectories(full.getParent());
        Files.writeString(full, file.getValue().asText(), StandardCharsets.UTF_8);
      }
      Session.Builder builder =
          Session.newBuilder()
              .setWorkspace(workspace.toString())
              .setApprovalMode(
                  ApprovalMode.valueOf(
                      settings.path("approval_mode").asText("APPROVAL_MODE_UNSPECIFIED")))
              .setLoopCap(settings.path("loop_cap").asInt(0));
      if (settings.has("script")) {
        builder.setProvider(
            ProviderConfig.newBuilder()
                .setKind(ProviderKind.PROVIDER_KIND_SCRIPTED)
                .setScriptJson(JSON.writeValueAsString(settings.get("script"))));
      }
      session = client.createSession(builder.build());
      try {
        for (JsonNode step : scenario.path("steps")) {
          if (!step(step)) {
            return;
          }
        }
        check(scenario.path("expect"));
      } finally {
        if (turn != null) {
          turn.close();
        }
      }
    }

    EngineEvent read() {
      assertTrue(turn.hasNext(), "the stream ended early");
      EngineEvent event = turn.next();
      events.add(event);
      return event;
    }

    EngineEvent last(String kind) {
      for (int i = events.size() - 1; i >= 0; i--) {
        if (kind(events.get(i)).equals(kind)) {
          return events.get(i);
        }
      }
      return fail("no " + kind + " event");
    }

    void send(JsonNode step, EngineCommand command) {
      if (step.path("via").asText().equals("submit")) {
        Runnable submit = () -> client.submit(session.getId(), command);
        if (step.has("expect_code")) {
          expectCode(step.get("expect_code").asText(), submit);
        } else {
          submit.run();
        }
      } else {
        turn.send(command);
      }
    }

    /** Runs one step; false ends the scenario (an expected error happened). */
    boolean step(JsonNode s) throws IOException {
      switch (s.path("do").asText()) {
        case "start" -> {
          StartTurn.Builder start =
              StartTurn.newBuilder()
                  .setSessionId(s.path("session_id").asText(session.getId()))
                  .setText(s.path("text").asText());
          if (s.has("output_schema")) {
            start.setOutputSchemaJson(JSON.writeValueAsString(s.get("output_schema")));
          }
          turn = client.startTurn(start.build());
          if (s.has("expect_code")) {
            expectCode(s.get("expect_code").asText(), turn::hasNext);
            return false;
          }
        }
        case "read_until" -> {
          while (!kind(read()).equals(s.path("kind").asText())) {
            // keep reading
          }
        }
        case "decide" -> {
          ApprovalRequested request = last("approval_requested").getApprovalRequested();
          send(
              s,
              EngineCommand.newBuilder()
                  .setApprovalDecision(
                      ApprovalDecision.newBuilder()
                          .setRequestId(request.getRequestId())
                          .setDecision(Decision.valueOf(s.path("decision").asText()))
                          .setFeedback(s.path("feedback").asText("")))
                  .build());
        }
        case "loop" ->
            send(
                s,
                EngineCommand.newBuilder()
                    .setLoopDecision(
                        LoopDecision.newBuilder()
                            .setAction(LoopAction.valueOf(s.path("action").asText()))
                            .setExtraIterations(s.path("extra_iterations").asInt(0)))
                    .build());
        case "answer" -> {
          UserQuestion asked = last("user_question").getUserQuestion();
          send(
              s,
              EngineCommand.newBuilder()
                  .setUserAnswer(
                      UserAnswer.newBuilder()
                          .setRequestId(asked.getRequestId())
                          .setText(s.path("text").asText()))
                  .build());
        }
        case "run" -> {
          List<EngineEvent> kept = new ArrayList<>();
          boolean left = false;
          try (Turn run = client.runTurn(session.getId(), s.path("text").asText(), Handlers.defaults())) {
            for (EngineEvent event : run) {
              kept.add(event);
              if (kind(event).equals(s.path("leave_after").asText())) {
                left = true;
                break; // leaving the loop: closing the turn cancels it
              }
            }
          }
          if (!left) {
            events.addAll(kept);
          }
        }
        case "cancel" -> {
          if (s.path("via").asText().equals("cancel_turn")) {
            client.cancelTurn(session.getId());
          } else {
            turn.cancel();
          }
        }
        case "steer" -> {
          if (s.path("via").asText().equals("submit")) {
            send(s, EngineCommand.newBuilder()
                .setSteer(Steer.newBuilder().setText(s.path("text").asText())).build());
          } else {
            turn.steer(s.path("text").asText());
          }
        }
        case "start_second" -> {
          try (Turn second = client.startTurn(session.getId(), s.path("text").asText(), false)) {
            KodadException e = expectCode(s.path("expect_code").asText(), second::hasNext);
            if (s.path("message_contains_turn_id").asBoolean()) {
              assertTrue(e.getMessage().contains(turn.id()), e.getMessage());
            }
          }
        }
        case "finish" -> {
          while (!kind(read()).equals("turn_ended")) {
            // keep reading
          }
          assertFalse(turn.hasNext(), "the stream should close after turn_ended");
        }
        case "watch" -> {
          long after = s.path("after_seq").asLong(0);
          List<EngineEvent> want = events.stream().filter(e -> e.getSeq() > after).toList();
          List<EngineEvent> got = new ArrayList<>();
          try (EventStream stream = client.watch(session.getId(), after)) {
            while (got.size() < want.size() && stream.hasNext()) {
              got.add(stream.next());
            }
          }
          assertEquals(want, got);
        }
        default -> fail("unknown step " + s.path("do").asText());
      }
      return true;
    }

    void check(JsonNode expect) throws IOException {
      List<String> kinds = events.stream().map(ConformanceTest::kind).toList();
      for (int i = 0; i < events.size(); i++) {
        assertEquals(events.get(0).getSeq() + i, events.get(i).getSeq(), "seqs are gap-free");
      }
      if (expect.has("kinds")) {
        List<String> want = new ArrayList<>();
        expect.get("kinds").forEach(k -> want.add(k.asText()));
        assertEquals(want, kinds);
      }
      if (expect.has("kinds_include")) {
        int i = 0;
        JsonNode want = expect.get("kinds_include");
        for (String k : kinds) {
          if (i < want.size() && k.equals(want.get(i).asText())) {
            i++;
          }
        }
        assertEquals(want.size(), i, kinds + " lack " + want);
      }
      if (expect.has("subagent")) {
        JsonNode want = expect.get("subagent");
        List<String> tagged = new ArrayList<>();
        Set<String> children = new HashSet<>();
        for (EngineEvent e : events) {
          if (e.getSubagentSessionId().isEmpty()) {
            continue;
          }
          children.add(e.getSubagentSessionId());
          assertEquals(want.get("parent_call_id").asText(), e.getParentCallId());
          tagged.add(kind(e));
        }
        assertEquals(1, children.size(), "sub-agent sessions " + children);
        assertFalse(children.contains(session.getId()));
        List<String> kindsWanted = new ArrayList<>();
        want.get("kinds").forEach(k -> kindsWanted.add(k.asText()));
        assertEquals(kindsWanted, tagged);
      }
      expect
          .path("count")
          .fields()
          .forEachRemaining(
              c ->
                  assertEquals(
                      c.getValue().asLong(),
                      kinds.stream().filter(c.getKey()::equals).count(),
                      c.getKey() + " events"));
      if (expect.has("text")) {
        StringBuilder text = new StringBuilder();
        events.forEach(e -> text.append(e.getTextDelta().getText()));
        assertEquals(expect.get("text").asText(), text.toString());
      }
      if (expect.has("turn_ended")) {
        JsonNode want = expect.get("turn_ended");
        TurnEnded ended = last("turn_ended").getTurnEnded();
        assertEquals(want.get("reason").asText(), ended.getReason().name());
        if (want.has("input_tokens")) {
          assertEquals(want.get("input_tokens").asLong(), ended.getUsage().getInputTokens());
        }
        if (want.has("output_tokens")) {
          assertEquals(want.get("output_tokens").asLong(), ended.getUsage().getOutputTokens());
        }
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = expect.path("files").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> file = it.next();
        assertEquals(
            file.getValue().asText(),
            Files.readString(workspace.resolve(file.getKey()), StandardCharsets.UTF_8),
            file.getKey());
      }
      Map<String, ToolCallFinished> finished = new HashMap<>();
      Map<String, Long> streamed = new HashMap<>();
      for (EngineEvent e : events) {
        if (e.hasToolCallFinished()) {
          finished.put(e.getToolCallFinished().getCallId(), e.getToolCallFinished());
        }
        if (e.hasToolCallOutput()) {
          String chunk = e.getToolCallOutput().getChunk();
          streamed.merge(
              e.getToolCallOutput().getCallId(),
              (long) chunk.codePointCount(0, chunk.length()),
              Long::sum);
        }
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = expect.path("tool_results").fields();
          it.hasNext(); ) {
        Map.Entry<String, JsonNode> result = it.next();
        ToolCallFinished got = finished.get(result.getKey());
        assertNotNull(got, "no result for call " + result.getKey());
        JsonNode want = result.getValue();
        if (want.has("is_error")) {
          assertEquals(want.get("is_error").asBoolean(), got.getIsError(), result.getKey() + " is_error: " + got.getOutput());
        }
        if (want.has("output")) {
          assertEquals(want.get("output").asText(), got.getOutput());
        }
        if (want.has("truncated")) {
          assertEquals(want.get("truncated").asBoolean(), got.getTruncated(), "truncated");
        }
        if (want.has("output_length")) {
          String output = got.getOutput();
          assertEquals(want.get("output_length").asLong(), output.codePointCount(0, output.length()));
        }
      }
      expect
          .path("streamed_output")
          .fields()
          .forEachRemaining(
              s ->
                  assertEquals(
                      s.getValue().asLong(), streamed.getOrDefault(s.getKey(), 0L), s.getKey()));
      if (expect.has("approval")) {
        JsonNode want = expect.get("approval");
        ApprovalRequested asked = last("approval_requested").getApprovalRequested();
        if (want.has("summary")) {
          assertEquals(want.get("summary").asText(), asked.getSummary());
        }
        if (want.has("tool_name")) {
          assertEquals(want.get("tool_name").asText(), asked.getToolName());
        }
      }
      if (expect.has("approval_rules")) {
        List<ApprovalRule> want = new ArrayList<>();
        for (JsonNode rule : expect.get("approval_rules")) {
          want.add(
              ApprovalRule.newBuilder()
                  .setToolName(rule.path("tool_name").asText(""))
                  .setCommandPrefix(rule.path("command_prefix").asText(""))
                  .build());
        }
        assertEquals(want, client.getSession(session.getId()).getApprovalRulesList());
      }
      if (expect.has("output")) {
        Value output = KodadClient.output(last("turn_ended").getTurnEnded());
        JsonNode got = JSON.readTree(JsonFormat.printer().print(output));
        // A protobuf Value holds every number as a double: compare numbers by value.
        Comparator<JsonNode> numbers =
            (a, b) ->
                a.isNumber() && b.isNumber()
                    ? Double.compare(a.doubleValue(), b.doubleValue())
                    : a.equals(b) ? 0 : 1;
        assertTrue(expect.get("output").equals(numbers, got), got + " is not the output wanted");
      }
      if (expect.has("history_roles")) {
        List<String> want = new ArrayList<>();
        expect.get("history_roles").forEach(r -> want.add(r.asText()));
        assertEquals(
            want,
            client.messages(session.getId()).stream().map(m -> m.getRole().name()).toList());
      }
    }
  }
}
