// spawnSidecar against the real kodad: over a port and a unix socket, token required, errors.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { KodadClient, SidecarError, spawnSidecar } from "../src/index.js";
import { repository, tempDir } from "./kodad.js";

const command = [process.env.KODAD_PYTHON ?? join(repository, ".venv/bin/python"), "-m", "kodad"];

describe("spawnSidecar", () => {
  for (const [name, listen] of [
    ["port", "127.0.0.1:0"],
    ["unix", `unix://${join(tempDir(), "kodad.sock")}`],
  ]) {
    test(`over a ${name}`, async () => {
      const client = await spawnSidecar({ command, listen, args: ["--data-dir", tempDir()] });
      const sidecar = client.sidecar!;
      assert.ok(sidecar.ready.token.length > 20);
      const session = await client.createSession({ workspace: tempDir() });
      const models = await client.listModels({ sessionId: session.id });
      assert.deepEqual(
        models.map((m) => m.id),
        ["scripted"],
      );
      let text = "";
      for await (const event of client.runTurn(session.id, "hi")) {
        if (event.payload.case === "textDelta") text += event.payload.value.text;
      }
      assert.equal(text, "You said: hi");
      const stranger = KodadClient.connect(sidecar.ready.address, { token: "wrong" });
      await assert.rejects(stranger.serverInfo(), { code: "UNAUTHENTICATED" });
      await stranger.close();
      await client.close();
      assert.equal(sidecar.process.exitCode, 0);
    });
  }

  test("a missing binary or a failed start is a clear error", async () => {
    await assert.rejects(spawnSidecar({ command: [join(tempDir(), "missing")] }), (e: unknown) => {
      assert.ok(e instanceof SidecarError);
      assert.match(e.message, /cannot start/);
      return true;
    });
    await assert.rejects(
      spawnSidecar({ command, args: ["--tls-cert", "x.pem"] }),
      /exited with code 2 before it was ready: .*--tls-cert and --tls-key/s,
    );
  });
});
