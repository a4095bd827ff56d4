// Runs the shared scenarios (tests/conformance/*.json) against a live kodad.
import { equals, type DescEnum } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ApprovalModeSchema,
  DecisionSchema,
  EngineEventSchema,
  KodadClient,
  KodadError,
  LoopActionSchema,
  MessageRoleSchema,
  outputOf,
  ProviderKind,
  TurnEndReasonSchema,
  type EngineEvent,
  type Session,
  type Turn,
  type TurnEnded,
} from "../src/index.js";
import { repository, startKodad, tempDir, type Server } from "./kodad.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const scenarios = join(repository, "tests/conformance");

/** The proto name of an event's payload ("text_delta"). */
function kind(event: EngineEvent): string {
  return (event.payload.case ?? "").replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function enumValue(schema: DescEnum, name: string): number {
  const value = schema.values.find((v) => v.name === name);
  assert.ok(value, `unknown ${schema.typeName} value ${name}`);
  return value.number;
}

function enumName(schema: DescEnum, value: number): string {
  return schema.values.find((v) => v.number === value)?.name ?? String(value);
}

async function expectCode(run: () => Promise<unknown>, code: string): Promise<KodadError> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof KodadError, `not a KodadError: ${error}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

class Runner {
  turn!: Turn;
  events: EngineEvent[] = [];

  constructor(
    readonly client: KodadClient,
    readonly session: Session,
    readonly workspace: string,
  ) {}

  async read(): Promise<EngineEvent> {
    const event = await this.turn.next();
    assert.ok(event, "the stream ended early");
    this.events.push(event);
    return event;
  }

  last(k: string): EngineEvent {
    const event = this.events.findLast((e) => kind(e) === k);
    assert.ok(event, `no ${k} event`);
    return event;
  }

  /** Runs one step; false ends the scenario (an expected error happened). */
  async step(s: Json): Promise<boolean> {
    switch (s.do) {
      case "start": {
        this.turn = this.client.startTurn(s.session_id ?? this.session.id, s.text, {
          outputSchema: s.output_schema,
        });
        if (s.expect_code) {
          await expectCode(() => this.turn.next(), s.expect_code);
          return false;
        }
        break;
      }
      case "read_until":
        while (kind(await this.read()) !== s.kind);
        break;
      case "decide": {
        const request = this.last("approval_requested").payload.value as { requestId: string };
        const decision = enumValue(DecisionSchema, s.decision);
        const command = {
          command: {
            case: "approvalDecision" as const,
            value: { requestId: request.requestId, decision, feedback: s.feedback ?? "" },
          },
        };
        await this.send(s, command);
        break;
      }
      case "loop": {
        const action = enumValue(LoopActionSchema, s.action);
        const command = {
          command: {
            case: "loopDecision" as const,
            value: { action, extraIterations: s.extra_iterations ?? 0 },
          },
        };
        await this.send(s, command);
        break;
      }
      case "answer": {
        const asked = this.last("user_question").payload.value as { requestId: string };
        const command = {
          command: {
            case: "userAnswer" as const,
            value: { requestId: asked.requestId, text: s.text },
          },
        };
        await this.send(s, command);
        break;
      }
      case "run": {
        const kept: EngineEvent[] = [];
        let left = false;
        for await (const event of this.client.runTurn(this.session.id, s.text)) {
          kept.push(event);
          if (s.leave_after && kind(event) === s.leave_after) {
            left = true;
            break; // leaving the loop: the turn is cancelled
          }
        }
        if (!left) this.events.push(...kept);
        break;
      }
      case "cancel":
        if (s.via === "cancel_turn") await this.client.cancelTurn(this.session.id);
        else this.turn.cancel();
        break;
      case "steer":
        if (s.via === "submit") {
          await this.send(s, { command: { case: "steer" as const, value: { text: s.text } } });
        } else {
          this.turn.steer(s.text);
        }
        break;
      case "start_second": {
        const second = this.client.startTurn(this.session.id, s.text);
        const error = await expectCode(() => second.next(), s.expect_code);
        if (s.message_contains_turn_id) assert.match(error.message, new RegExp(this.turn.id));
        break;
      }
      case "finish":
        while (kind(await this.read()) !== "turn_ended");
        assert.equal(await this.turn.next(), undefined, "the stream should close after turn_ended");
        break;
      case "watch": {
        const afterSeq = BigInt(s.after_seq ?? 0);
        const want = this.events.filter((e) => e.seq > afterSeq);
        const got: EngineEvent[] = [];
        for await (const event of this.client.watch(this.session.id, afterSeq)) {
          if (got.push(event) === want.length) break;
        }
        want.forEach((w, i) => assert.ok(equals(EngineEventSchema, got[i], w), `watch event ${i}`));
        break;
      }
      default:
        assert.fail(`unknown step ${s.do}`);
    }
    return true;
  }

  async send(s: Json, command: Json): Promise<void> {
    if (s.via === "submit") {
      const run = () => this.client.submit(this.session.id, command);
      if (s.expect_code) await expectCode(run, s.expect_code);
      else await run();
    } else {
      this.turn.send(command);
    }
  }

  async check(expect: Json): Promise<void> {
    const kinds = this.events.map(kind);
    this.events.forEach((e, i) => assert.equal(e.seq, this.events[0].seq + BigInt(i), "seq gap"));
    if (expect.kinds) assert.deepEqual(kinds, expect.kinds);
    if (expect.kinds_include) {
      let i = 0;
      for (const k of kinds) if (k === expect.kinds_include[i]) i++;
      assert.equal(i, expect.kinds_include.length, `${kinds} lack ${expect.kinds_include}`);
    }
    if (expect.subagent) {
      const tagged = this.events.filter((e) => e.subagentSessionId !== "");
      const children = new Set(tagged.map((e) => e.subagentSessionId));
      assert.equal(children.size, 1, `sub-agent sessions ${[...children]}`);
      assert.ok(!children.has(this.session.id));
      for (const e of tagged) assert.equal(e.parentCallId, expect.subagent.parent_call_id);
      assert.deepEqual(tagged.map(kind), expect.subagent.kinds);
    }
    for (const [k, n] of Object.entries(expect.count ?? {})) {
      assert.equal(kinds.filter((have) => have === k).length, n, `${k} events`);
    }
    if (expect.text !== undefined) {
      const text = this.events
        .map((e) => (e.payload.case === "textDelta" ? e.payload.value.text : ""))
        .join("");
      assert.equal(text, expect.text);
    }
    if (expect.turn_ended) {
      const ended = this.last("turn_ended").payload;
      assert.ok(ended.case === "turnEnded");
      assert.equal(enumName(TurnEndReasonSchema, ended.value.reason), expect.turn_ended.reason);
      if (expect.turn_ended.input_tokens !== undefined)
        assert.equal(ended.value.usage?.inputTokens, BigInt(expect.turn_ended.input_tokens));
      if (expect.turn_ended.output_tokens !== undefined)
        assert.equal(ended.value.usage?.outputTokens, BigInt(expect.turn_ended.output_tokens));
    }
    for (const [path, content] of Object.entries(expect.files ?? {})) {
      assert.equal(readFileSync(join(this.workspace, path), "utf8"), content, path);
    }
    const finished = new Map<string, Json>();
    const streamed = new Map<string, number>();
    for (const e of this.events) {
      if (e.payload.case === "toolCallFinished") finished.set(e.payload.value.callId, e.payload.value);
      if (e.payload.case === "toolCallOutput") {
        const id = e.payload.value.callId;
        streamed.set(id, (streamed.get(id) ?? 0) + [...e.payload.value.chunk].length);
      }
    }
    for (const [id, want] of Object.entries<Json>(expect.tool_results ?? {})) {
      const got = finished.get(id);
      assert.ok(got, `no result for call ${id}`);
      if (want.is_error !== undefined) assert.equal(got.isError, want.is_error, `${id} is_error`);
      if (want.output !== undefined) assert.equal(got.output, want.output);
      if (want.truncated !== undefined) assert.equal(got.truncated, want.truncated);
      if (want.output_length !== undefined)
        assert.equal([...got.output].length, want.output_length, `${id} output length`);
    }
    for (const [id, n] of Object.entries(expect.streamed_output ?? {})) {
      assert.equal(streamed.get(id) ?? 0, n, `${id} streamed characters`);
    }
    if (expect.approval) {
      const asked = this.last("approval_requested").payload.value as Json;
      if (expect.approval.summary !== undefined) assert.equal(asked.summary, expect.approval.summary);
      if (expect.approval.tool_name !== undefined)
        assert.equal(asked.toolName, expect.approval.tool_name);
    }
    if (expect.approval_rules) {
      const session = await this.client.getSession(this.session.id);
      assert.deepEqual(
        session.approvalRules.map((r) => ({ tool_name: r.toolName, command_prefix: r.commandPrefix })),
        expect.approval_rules.map((r: Json) => ({
          tool_name: r.tool_name ?? "",
          command_prefix: r.command_prefix ?? "",
        })),
      );
    }
    if (expect.output !== undefined) {
      const ended = this.last("turn_ended").payload.value as TurnEnded;
      assert.deepEqual(outputOf(ended), expect.output);
    }
    if (expect.history_roles) {
      const messages = await this.client.messages(this.session.id);
      assert.deepEqual(
        messages.map((m) => enumName(MessageRoleSchema, m.role)),
        expect.history_roles,
      );
    }
  }
}

describe("conformance", () => {
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

  const files = readdirSync(scenarios).filter((f) => f.endsWith(".json")).sort();
  test("scenarios are found", () => assert.ok(files.length > 0));
  for (const file of files) {
    test(file.replace(/\.json$/, ""), async () => {
      const scenario: Json = JSON.parse(readFileSync(join(scenarios, file), "utf8"));
      const workspace = tempDir();
      for (const [path, content] of Object.entries<string>(scenario.session.files ?? {})) {
        mkdirSync(dirname(join(workspace, path)), { recursive: true });
        writeFileSync(join(workspace, path), content);
      }
      const session = await client.createSession({
        workspace,
        approvalMode: enumValue(ApprovalModeSchema, scenario.session.approval_mode ?? "APPROVAL_MODE_UNSPECIFIED"),
        loopCap: scenario.session.loop_cap ?? 0,
        provider: scenario.session.script
          ? { kind: ProviderKind.SCRIPTED, scriptJson: JSON.stringify(scenario.session.script) }
          : undefined,
      });
      const runner = new Runner(client, session, workspace);
      try {
        for (const s of scenario.steps) if (!(await runner.step(s))) return;
        await runner.check(scenario.expect ?? {});
      } finally {
        runner.turn?.close();
      }
    });
  }
});
