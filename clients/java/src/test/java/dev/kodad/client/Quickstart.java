package dev.kodad.client;

import dev.kodad.koda.v1.Decision;
import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.Session;

/** Quickstart, as in the README. Usage: Quickstart HOST:PORT WORKSPACE */
public final class Quickstart {
  public static void main(String[] args) {
    String target = args[0];
    String workspace = args[1];
    try (KodadClient client = KodadClient.connect(target)) {
      Session session = client.createSession(Session.newBuilder().setWorkspace(workspace).build());
      Handlers handlers =
          Handlers.defaults().onApproval(request -> Handlers.ApprovalAnswer.of(Decision.DECISION_APPROVE));
      try (Turn turn = client.runTurn(session.getId(), "hello from Java", handlers)) {
        while (turn.hasNext()) {
          EngineEvent event = turn.next();
          System.out.print(event.getTextDelta().getText());
        }
      }
      System.out.println();
    }
  }
}
