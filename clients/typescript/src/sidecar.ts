// Sidecar mode: start `kodad serve` as a child process, read its ready line, connect with
// its per-launch token, and stop it with the client.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** The kodad binary is missing, failed to start, or was not ready in time. */
export class SidecarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SidecarError";
  }
}

/** What `kodad serve --ready-json` prints once it serves. */
export interface ReadyLine {
  listen: string;
  address: string;
  port: number;
  pid: number;
  version: string;
  token: string;
}

export interface SidecarOptions {
  /** The kodad executable and leading arguments (default: $KODAD_BIN, else "kodad"). */
  command?: string[];
  /** "127.0.0.1:0" (default: a free port) or "unix:///path/kodad.sock". */
  listen?: string;
  /** More `kodad serve` flags, e.g. ["--data-dir", dir]. */
  args?: string[];
  /** How long to wait for the ready line (default 10 s). */
  readyTimeoutMs?: number;
}

/** A kodad child process. */
export class Sidecar {
  private readonly exited: Promise<number | null>;

  constructor(
    readonly process: ChildProcess,
    readonly ready: ReadyLine,
    private readonly tail: string[],
  ) {
    this.exited =
      process.exitCode !== null
        ? Promise.resolve(process.exitCode)
        : new Promise((resolve) => process.once("exit", (code) => resolve(code)));
  }

  /** Closes kodad's stdin (it drains and exits), then kills it if it lingers. */
  async stop(graceMs = 10_000): Promise<number | null> {
    this.process.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        this.process.kill("SIGKILL");
        resolve(null);
      }, graceMs);
    });
    const code = await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return code ?? this.exited;
  }

  stderrTail(): string {
    return this.tail.join("\n").trim() || "(no output)";
  }
}

/** Starts kodad and reads its ready line; the caller connects with it. */
export async function startSidecar(options: SidecarOptions = {}): Promise<Sidecar> {
  const command = options.command ?? [process.env.KODAD_BIN || "kodad"];
  const args = [
    ...command.slice(1),
    "serve",
    "--listen",
    options.listen ?? "127.0.0.1:0",
    "--ready-json",
    "--launch-token",
    "--exit-with-parent",
    ...(options.args ?? []),
  ];
  const child = spawn(command[0], args, { stdio: ["pipe", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) =>
      reject(new SidecarError(`cannot start ${command[0]}: ${error.message}`)),
    );
  });
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => {
    if (tail.push(line) > 20) tail.shift();
  });
  const stderrClosed = new Promise((resolve) => child.stderr!.once("close", resolve));
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const line = await new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.stdout!.once("end", () => resolve(""));
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  }).finally(() => clearTimeout(timer));
  if (line === "timeout" || line === "") {
    const sidecar = new Sidecar(child, {} as ReadyLine, tail);
    const code = await sidecar.stop(line === "" ? 10_000 : 1000);
    await stderrClosed;
    throw new SidecarError(
      line === ""
        ? `kodad exited with code ${code} before it was ready: ${sidecar.stderrTail()}`
        : `kodad was not ready within ${timeoutMs} ms: ${sidecar.stderrTail()}`,
    );
  }
  try {
    return new Sidecar(child, JSON.parse(line) as ReadyLine, tail);
  } catch {
    child.kill("SIGKILL");
    throw new SidecarError(`kodad printed no ready line: ${line}`);
  }
}

/** Starts kodad as a child process owned by the returned client (see startSidecar). */
export async function spawnSidecar(options: SidecarOptions = {}) {
  const { KodadClient } = await import("./index.js");
  const sidecar = await startSidecar(options);
  const client = KodadClient.connect(sidecar.ready.address, { token: sidecar.ready.token });
  client.sidecar = sidecar;
  return client;
}
