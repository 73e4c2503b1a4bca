// Goal: the local stack's scripts behave as promised: a port taken by another process is a
// clear error naming the service and the port; start twice is harmless; stop leaves no
// process behind. Uses its own state folder and ports, so the shared stack is untouched.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../support/wait.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const state = mkdtempSync(join(tmpdir(), "cf-stack-scripts-"));

function run(script: string, args: string[], env: Record<string, string>) {
  const r = spawnSync("bash", [join(repoRoot, "deploy/local", script), ...args], {
    env: { ...process.env, CF_STATE: state, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Redis renames its process to `redis-server 127.0.0.1:PORT`; find ours by that. */
function redisProcesses(port: string): string[] {
  const r = spawnSync("pgrep", ["-af", `redis-server 127.0.0.1:${port}`], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l.trim() !== "" && !l.includes("pgrep"));
}

describe("local stack scripts", () => {
  afterAll(() => rmSync(state, { recursive: true, force: true }));

  it("refuses to start on a port another process holds, naming service and port", async () => {
    const port = await freePort();
    const squatter: Server = createServer().listen(port, "127.0.0.1");
    await new Promise((r) => squatter.once("listening", r));
    try {
      const r = run("services/redis.sh", ["start"], { CF_REDIS_PORT: String(port) });
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`redis: port ${port} is already taken`);
    } finally {
      squatter.close();
    }
  });

  it("starts twice harmlessly and stops without leaving a process", async () => {
    const env = { CF_REDIS_PORT: String(await freePort()) };
    expect(run("services/redis.sh", ["start"], env).code).toBe(0);
    const again = run("services/redis.sh", ["start"], env);
    expect(again.code).toBe(0);
    expect(run("services/redis.sh", ["status"], env).out).toMatch(/redis\s+running/);
    expect(redisProcesses(env.CF_REDIS_PORT)).toHaveLength(1);

    expect(run("services/redis.sh", ["stop"], env).code).toBe(0);
    expect(run("services/redis.sh", ["stop"], env).code).toBe(0);
    expect(run("services/redis.sh", ["status"], env).code).toBe(3);
    expect(redisProcesses(env.CF_REDIS_PORT)).toEqual([]);
  });
});
