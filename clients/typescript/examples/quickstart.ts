// Quickstart, as in the README. Usage: node quickstart.js HOST:PORT WORKSPACE
import { Decision, KodadClient } from "../src/index.js";

const [target, workspace] = process.argv.slice(2);
const client = KodadClient.connect(target);
const session = await client.createSession({ workspace });
for await (const event of client.runTurn(session.id, "hello from TypeScript", {
  onApproval: async (request) => ({ decision: Decision.APPROVE }),
  signal: AbortSignal.timeout(60_000),
})) {
  if (event.payload.case === "textDelta") process.stdout.write(event.payload.value.text);
}
client.close();
process.stdout.write("\n");
