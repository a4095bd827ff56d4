// Starts `kodad serve` from the repository's virtualenv on a free port, for the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

export const repository = resolve(import.meta.dirname, "../../../..");

export interface Server {
  address: string;
  stop(): void;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "kodad-ts-"));
}

export async function startKodad(): Promise<Server> {
  const python = process.env.KODAD_PYTHON ?? join(repository, ".venv/bin/python");
  const child: ChildProcess = spawn(
    python,
    ["-m", "kodad", "serve", "--listen", "127.0.0.1:0", "--data-dir", tempDir()],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines = createInterface({ input: child.stderr! });
  const address = await new Promise<string>((resolveAddress, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`kodad exited (${code}) before serving`)));
    lines.on("line", (line) => {
      const match = /serving on (\S+)/.exec(line);
      if (match) resolveAddress(match[1]);
    });
  });
  return { address, stop: () => child.kill("SIGKILL") };
}
