package dev.kodad.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kodad.koda.v1.SessionServiceGrpc;
import io.grpc.MethodDescriptor;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Every RPC of koda.v1.SessionService has a wrapper on KodadClient. */
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
}
