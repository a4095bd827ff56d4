package dev.kodad.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** `kodad serve` from the repository's virtualenv on a free port, for the tests. */
final class KodadServer implements AutoCloseable {
  static final Path REPOSITORY = Path.of("../..").toAbsolutePath().normalize();

  final String address;
  private final Process process;

  private KodadServer(Process process, String address) {
    this.process = process;
    this.address = address;
  }

  static KodadServer start() throws IOException {
    String python = System.getenv("KODAD_PYTHON");
    if (python == null || python.isEmpty()) {
      python = REPOSITORY.resolve(".venv/bin/python").toString();
    }
    Path data = Files.createTempDirectory("kodad-java-");
    Process process =
        new ProcessBuilder(
                python, "-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--data-dir",
                data.toString())
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
    BufferedReader stderr =
        new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8));
    Pattern serving = Pattern.compile("serving on (\\S+)");
    for (String line = stderr.readLine(); line != null; line = stderr.readLine()) {
      Matcher m = serving.matcher(line);
      if (m.find()) {
        Thread drain =
            new Thread(
                () -> {
                  try {
                    stderr.transferTo(java.io.Writer.nullWriter());
                  } catch (IOException ignored) {
                    // the process ended
                  }
                });
        drain.setDaemon(true);
        drain.start();
        return new KodadServer(process, m.group(1));
      }
    }
    process.destroyForcibly();
    throw new IOException("kodad exited before serving (" + python + ")");
  }

  @Override
  public void close() {
    process.destroyForcibly();
  }
}
