package dev.kodad.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kodad.koda.v1.EngineEvent;
import dev.kodad.koda.v1.Session;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** spawnSidecar against the real kodad: a port and a unix socket, the token, errors. */
class SidecarTest {
  static String[] command() {
    String python = System.getenv("KODAD_PYTHON");
    if (python == null || python.isEmpty()) {
      python = KodadServer.REPOSITORY.resolve(".venv/bin/python").toString();
    }
    return new String[] {python, "-m", "kodad"};
  }

  @ParameterizedTest
  @ValueSource(strings = {"port", "unix"})
  void spawnsServesAndStops(String over) throws IOException {
    Path dir = Files.createTempDirectory("kodad-sidecar-");
    String listen = over.equals("port") ? "127.0.0.1:0" : "unix://" + dir.resolve("kodad.sock");
    Sidecar.Options options =
        new Sidecar.Options()
            .command(command())
            .listen(listen)
            .args("--data-dir", dir.resolve("data").toString());
    Sidecar sidecar;
    try (KodadClient client = KodadClient.spawnSidecar(options)) {
      sidecar = client.sidecar();
      assertTrue(sidecar.token().length() > 20);
      Session session =
          client.createSession(Session.newBuilder().setWorkspace(dir.toString()).build());
      assertEquals("scripted", client.listModels(null, session.getId()).get(0).getId());
      StringBuilder text = new StringBuilder();
      try (Turn turn = client.runTurn(session.getId(), "hi", Handlers.defaults())) {
        while (turn.hasNext()) {
          EngineEvent event = turn.next();
          text.append(event.getTextDelta().getText());
        }
      }
      assertEquals("You said: hi", text.toString());
      try (KodadClient stranger =
          KodadClient.connect(sidecar.address(), InsecureChannelCredentials.create(), "wrong")) {
        KodadException e = assertThrows(KodadException.class, stranger::serverInfo);
        assertEquals(Status.Code.UNAUTHENTICATED, e.code());
      }
    }
    assertFalse(sidecar.process.isAlive());
    assertEquals(0, sidecar.process.exitValue());
  }

  @Test
  void errorsAreClear() throws IOException {
    Path dir = Files.createTempDirectory("kodad-sidecar-");
    Sidecar.SidecarException missing =
        assertThrows(
            Sidecar.SidecarException.class,
            () ->
                KodadClient.spawnSidecar(
                    new Sidecar.Options().command(dir.resolve("missing").toString())));
    assertTrue(missing.getMessage().startsWith("cannot start"), missing.getMessage());
    Sidecar.SidecarException failed =
        assertThrows(
            Sidecar.SidecarException.class,
            () ->
                KodadClient.spawnSidecar(
                    new Sidecar.Options().command(command()).args("--tls-cert", "x.pem")));
    assertTrue(failed.getMessage().contains("exited with code 2"), failed.getMessage());
    assertTrue(failed.getMessage().contains("--tls-cert and --tls-key"), failed.getMessage());
  }
}
