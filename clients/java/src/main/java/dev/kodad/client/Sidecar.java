package dev.kodad.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A kodad child process started by {@link KodadClient#spawnSidecar}: `kodad serve` with a
 * per-launch token, exiting when the client closes or this process dies.
 */
public final class Sidecar {
  /** The binary is missing, failed to start, or was not ready in time. */
  public static final class SidecarException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    SidecarException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Options of spawnSidecar. */
  public static final class Options {
    List<String> command;
    String listen = "127.0.0.1:0";
    List<String> args = List.of();
    Duration readyTimeout = Duration.ofSeconds(10);

    /** The kodad executable and leading arguments (default: $KODAD_BIN, else "kodad"). */
    public Options command(String... command) {
      this.command = List.of(command);
      return this;
    }

    /** "127.0.0.1:0" (the default: a free port) or "unix:///path/kodad.sock". */
    public Options listen(String listen) {
      this.listen = listen;
      return this;
    }

    /** More `kodad serve` flags, e.g. "--data-dir", dir. */
    public Options args(String... args) {
      this.args = List.of(args);
      return this;
    }

    public Options readyTimeout(Duration timeout) {
      this.readyTimeout = timeout;
      return this;
    }
  }

  private static final Pattern FIELD =
      Pattern.compile("\"(address|token)\":\\s*\"((?:[^\"\\\\]|\\\\.)*)\"|\"pid\":\\s*(\\d+)");

  final Process process;
  private final Deque<String> tail = new ArrayDeque<>();
  private String address = "";
  private String token = "";
  private long pid;

  private Sidecar(Process process) {
    this.process = process;
  }

  /** Where the sidecar serves (host:port or unix:///path). */
  public String address() {
    return address;
  }

  /** The per-launch bearer token. */
  public String token() {
    return token;
  }

  /** kodad's process id. */
  public long pid() {
    return pid;
  }

  static Sidecar start(Options options) {
    List<String> argv = new ArrayList<>();
    if (options.command != null) {
      argv.addAll(options.command);
    } else {
      String bin = System.getenv("KODAD_BIN");
      argv.add(bin == null || bin.isEmpty() ? "kodad" : bin);
    }
    argv.addAll(
        List.of(
            "serve", "--listen", options.listen, "--ready-json", "--launch-token",
            "--exit-with-parent"));
    argv.addAll(options.args);
    Process process;
    try {
      process = new ProcessBuilder(argv).start();
    } catch (IOException e) {
      throw new SidecarException("cannot start " + argv.get(0) + ": " + e.getMessage(), e);
    }
    Sidecar sidecar = new Sidecar(process);
    Thread stderr =
        new Thread(
            () -> {
              try (BufferedReader lines =
                  new BufferedReader(
                      new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
                for (String line = lines.readLine(); line != null; line = lines.readLine()) {
                  synchronized (sidecar.tail) {
                    sidecar.tail.addLast(line);
                    if (sidecar.tail.size() > 20) {
                      sidecar.tail.removeFirst();
                    }
                  }
                }
              } catch (IOException ignored) {
                // the process ended
              }
            },
            "kodad stderr");
    stderr.setDaemon(true);
    stderr.start();
    CompletableFuture<String> ready =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return new BufferedReader(
                        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
              } catch (IOException e) {
                return null;
              }
            });
    String line;
    try {
      line = ready.get(options.readyTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      sidecar.stop(Duration.ofSeconds(1));
      throw new SidecarException(
          "kodad was not ready within " + options.readyTimeout + ": " + sidecar.stderrTail(), e);
    } catch (InterruptedException | ExecutionException e) {
      sidecar.stop(Duration.ofSeconds(1));
      throw new SidecarException("waiting for kodad failed: " + e, e);
    }
    if (line == null) {
      int code = sidecar.stop(Duration.ofSeconds(10));
      try {
        stderr.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      throw new SidecarException(
          "kodad exited with code " + code + " before it was ready: " + sidecar.stderrTail(),
          null);
    }
    Matcher m = FIELD.matcher(line);
    while (m.find()) {
      if (m.group(3) != null) {
        sidecar.pid = Long.parseLong(m.group(3));
      } else if (m.group(1).equals("address")) {
        sidecar.address = m.group(2);
      } else {
        sidecar.token = m.group(2);
      }
    }
    if (sidecar.address.isEmpty() || sidecar.token.isEmpty()) {
      sidecar.stop(Duration.ofSeconds(1));
      throw new SidecarException("kodad printed no ready line: " + line, null);
    }
    return sidecar;
  }

  String stderrTail() {
    synchronized (tail) {
      return tail.isEmpty() ? "(no output)" : String.join("\n", tail);
    }
  }

  /** Closes kodad's stdin (it drains and exits), then kills it if it lingers; its exit code. */
  int stop(Duration grace) {
    try {
      process.getOutputStream().close();
    } catch (IOException ignored) {
      // already closed
    }
    try {
      if (!process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      return -1;
    }
    return process.exitValue();
  }
}
