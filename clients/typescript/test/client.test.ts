// The wrapper's own behaviour against a live kodad: errors, handlers, abort, the README example.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  Decision,
  KodadClient,
  KodadError,
  NO_ANSWER,
  ProviderKind,
  SessionService,
  TurnEndReason,
  type EngineEvent,
} from "../src/index.js";
import { startKodad, tempDir, type Server } from "./kodad.js";

const run = promisify(execFile);

function scripted(rounds: unknown[]) {
  return { kind: ProviderKind.SCRIPTED, scriptJson: JSON.stringify({ rounds }) };
}

describe("client", () => {
  let server: Server;
  let client: KodadClient;
  before(async () => {
    server = await startKodad();
    client = KodadClient.connect(server.address);
  });
  after(() => {
    client.close();
    server.stop();
  });

  test("errors carry the gRPC code name and the service's message", async () => {
    await assert.rejects(client.getSession("s_missing"), (error: unknown) => {
      assert.ok(error instanceof KodadError);
      assert.equal(error.code, "NOT_FOUND");
      assert.equal(error.grpcCode, 5);
      assert.match(error.message, /s_missing/);
      assert.equal(error.reason, "SESSION_NOT_FOUND");
      assert.deepEqual(error.metadata, { session_id: "s_missing" });
      return true;
    });
    await assert.rejects(client.createSession({ workspace: "" }), {
      code: "INVALID_ARGUMENT",
      reason: "INVALID_ARGUMENT",
    });
  });

  test("sessions lists by label and deleteSession removes", async () => {
    const label = `t${Date.now()}`;
    const created = await client.createSession({ workspace: tempDir(), labels: { suite: label } });
    const listed = [];
    for await (const s of client.sessions({ suite: label })) listed.push(s.id);
    assert.deepEqual(listed, [created.id]);
    await client.deleteSession(created.id);
    await assert.rejects(client.getSession(created.id), { code: "NOT_FOUND" });
  });

  test("without handlers an approval is rejected", async () => {
    const session = await client.createSession({
      workspace: tempDir(),
      provider: scripted([
        [{ tool_call: { name: "write_file", id: "w", arguments: { path: "a.txt", content: "x" } } }],
        [{ text: "done" }],
      ]),
    });
    const events: EngineEvent[] = [];
    for await (const event of client.runTurn(session.id, "write")) events.push(event);
    const resolved = events.find((e) => e.payload.case === "approvalResolved");
    assert.ok(resolved?.payload.case === "approvalResolved");
    assert.equal(resolved.payload.value.decision, Decision.REJECT);
    assert.equal(events.at(-1)?.payload.case, "turnEnded");
  });

  test("an async handler approves", async () => {
    const workspace = tempDir();
    const session = await client.createSession({
      workspace,
      provider: scripted([
        [{ tool_call: { name: "write_file", id: "w", arguments: { path: "a.txt", content: "x" } } }],
        [{ text: "done" }],
      ]),
    });
    const asked: string[] = [];
    for await (const _ of client.runTurn(session.id, "write", {
      onApproval: async (request) => {
        asked.push(request.toolName);
        return { decision: Decision.APPROVE };
      },
    }));
    assert.deepEqual(asked, ["write_file"]);
    const messages = await client.messages(session.id);
    assert.ok(messages.length >= 4);
  });

  test("aborting the signal breaks the stream and the turn is cancelled", async () => {
    const session = await client.createSession({
      workspace: tempDir(),
      provider: scripted([
        [{ tool_call: { name: "write_file", id: "w", arguments: { path: "a.txt", content: "x" } } }],
      ]),
    });
    const abort = new AbortController();
    const seen: string[] = [];
    const loop = async () => {
      for await (const event of client.runTurn(session.id, "write", {
        signal: abort.signal,
        onApproval: () => {
          abort.abort();
          return null;
        },
      })) {
        seen.push(event.payload.case ?? "");
      }
    };
    await assert.rejects(loop(), { name: "AbortError" });
    assert.equal(seen.at(-1), "approvalRequested");
    // The service cancels the abandoned turn and stores its end.
    for await (const event of client.watch(session.id)) {
      if (event.payload.case === "turnEnded") {
        assert.equal(event.payload.value.reason, TurnEndReason.CANCELLED);
        break;
      }
    }
  });

  test("every RPC of the service has a wrapper", () => {
    const wrappers: Record<string, string> = {
      GetServerInfo: "serverInfo", ListModels: "listModels", CreateSession: "createSession",
      GetSession: "getSession", ListSessions: "sessions", UpdateSession: "updateSession",
      DeleteSession: "deleteSession", ForkSession: "forkSession", ListMessages: "messages",
      ListFileChanges: "fileChanges", RunTurn: "runTurn", SubmitCommand: "submit",
      CancelTurn: "cancelTurn", RewindSession: "rewind", UnrewindSession: "unrewind",
      GetTurnDiff: "turnDiff", RemoveQueuedTurn: "removeQueuedTurn", WatchSession: "watch",
      ListAgentProfiles: "agentProfiles", GetAgentProfile: "agentProfile",
      CompactSession: "compact",
    };
    const rpcs = SessionService.methods.map((m) => m.name).sort();
    assert.deepEqual(rpcs, Object.keys(wrappers).sort(), "an RPC without a wrapper (or a stale one)");
    for (const [rpc, method] of Object.entries(wrappers)) {
      const found = (KodadClient.prototype as unknown as Record<string, unknown>)[method];
      assert.equal(typeof found, "function", `${rpc}: KodadClient has no ${method}`);
    }
  });

  test("questions get the handler's answer, or NO_ANSWER without one", async () => {
    const ask = (id: string) => ({
      tool_call: { name: "ask_user", id, arguments: { question: "Which?", choices: ["a", "b"] } },
    });
    const session = await client.createSession({
      workspace: tempDir(),
      provider: scripted([[ask("q1")], [{ text: "ok" }], [ask("q2")], [{ text: "ok" }]]),
    });
    const first: EngineEvent[] = [];
    for await (const e of client.runTurn(session.id, "go", { onQuestion: (q) => q.choices[1] }))
      first.push(e);
    const second: EngineEvent[] = [];
    for await (const e of client.runTurn(session.id, "again")) second.push(e);
    const outputs = [...first, ...second].flatMap((e) =>
      e.payload.case === "toolCallFinished" ? [e.payload.value.output] : [],
    );
    assert.deepEqual(outputs, ["b", NO_ANSWER]);
  });

  test("leaving a turn early cancels it; a turn closed unread throws nothing", async () => {
    const session = await client.createSession({
      workspace: tempDir(),
      provider: scripted([[{ text: "long" }, { delay_ms: 600000 }], [{ text: "next" }]]),
    });
    for await (const e of client.runTurn(session.id, "first")) {
      if (e.payload.case === "textDelta") break;
    }
    const events: EngineEvent[] = [];
    for await (const e of client.runTurn(session.id, "second")) events.push(e);
    const ended = events.at(-1)!.payload;
    assert.equal(ended.case, "turnEnded");
    assert.equal(ended.value.reason, TurnEndReason.COMPLETED);
    const unread = client.startTurn(session.id, "never read");
    unread.close(); // no unhandled rejection may follow (node --test fails on one)
    await new Promise((resolve) => setImmediate(resolve));
  });

  test("the README example is the quickstart program", () => {
    const readme = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");
    const block = /```ts\n([^]*?)```/.exec(readme)?.[1] ?? "";
    const program = readFileSync(join(import.meta.dirname, "../../examples/quickstart.ts"), "utf8");
    const lines = block
      .replace('"@kodad/client"', '"../src/index.js"')
      .replace('"127.0.0.1:50051"', "target")
      .replace('{ workspace: "/path/to/repo" }', "{ workspace }")
      .split("\n")
      .filter((line) => line.trim());
    assert.ok(lines.length >= 8);
    for (const line of lines) assert.ok(program.includes(line), `quickstart lacks: ${line}`);
  });

  test("the README example runs", async () => {
    const example = join(import.meta.dirname, "../examples/quickstart.js");
    const { stdout } = await run(process.execPath, [example, server.address, tempDir()]);
    assert.equal(stdout.trim(), "You said: hello from TypeScript");
  });
});
