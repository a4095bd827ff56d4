// An editor's side of ACP, written with the official TypeScript SDK as Zed-like clients
// are: spawns `kodad acp`, opens a session, sends one prompt, answers the permission
// request it gets, and prints what it saw as one JSON line.
//
//   node editor.mjs WORKSPACE OPTION_KIND -- COMMAND [ARGS...]
import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { PROTOCOL_VERSION, client, methods, ndJsonStream } from "@agentclientprotocol/sdk";

const [workspace, answerKind, dashes, command, ...args] = process.argv.slice(2);
if (dashes !== "--" || !command) {
  console.error("usage: node editor.mjs WORKSPACE OPTION_KIND -- COMMAND [ARGS...]");
  process.exit(2);
}

const agent = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
const stream = ndJsonStream(Writable.toWeb(agent.stdin), Readable.toWeb(agent.stdout));
const seen = { updates: [], permissions: [] };

const editor = client({ name: "kodad-acp-ts-test" })
  .onNotification(methods.client.session.update, ({ params }) => {
    seen.updates.push(params.update);
  })
  .onRequest(methods.client.session.requestPermission, ({ params }) => {
    seen.permissions.push({ toolCall: params.toolCall, kinds: params.options.map((o) => o.kind) });
    const option = params.options.find((o) => o.kind === answerKind);
    return { outcome: { outcome: "selected", optionId: option.optionId } };
  });

const result = await editor.connectWith(stream, async (ctx) => {
  const hello = await ctx.request(methods.agent.initialize, {
    protocolVersion: PROTOCOL_VERSION,
    clientCapabilities: { fs: { readTextFile: false, writeTextFile: false } },
  });
  const session = await ctx.request(methods.agent.session.new, { cwd: workspace, mcpServers: [] });
  const done = await ctx.request(methods.agent.session.prompt, {
    sessionId: session.sessionId,
    prompt: [{ type: "text", text: "write the file" }],
  });
  return { agent: hello.agentInfo, sessionId: session.sessionId, stopReason: done.stopReason };
});
agent.stdin.end();
await new Promise((resolve) => agent.on("exit", resolve));
console.log(JSON.stringify({ ...result, ...seen, exitCode: agent.exitCode }));
