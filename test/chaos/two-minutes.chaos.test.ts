// Goal: the README's test command proves exactly-once under fire. The 2-minute chaos run (its own
// 3-broker stack, two consumers and the sink, grants, duplicates, late duplicates resent after at
// least 300 newer events of their member, late events, every fault kind at least once) ends with
// exit 0 and a table where every invariant held. CF_CHAOS_SEED picks
// another seed; the run's logs stay under .state/chaos/runs/.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it, onTestFinished } from "vitest";
import { FAULT_LABELS } from "./report.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const seed = Number(process.env.CF_CHAOS_SEED ?? 1);

it(`a 2-minute chaos run (seed ${seed}) holds every invariant`, async () => {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [
      "test/chaos/main.ts",
      ...["--minutes", "2", "--seed", String(seed), "--rate", "1000", "--users", "2000"],
      ...["--drain-timeout", "240"],
    ],
    { cwd: root, env: process.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  // A test that times out still stops the run (which then stops its stack).
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGTERM");
  });
  let output = "";
  child.stdout.on("data", (b: Buffer) => {
    output += b.toString();
  });
  child.stderr.on("data", (b: Buffer) => {
    output += b.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  console.log(output.slice(output.indexOf("\nchaos run:")));
  console.log(`wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);

  expect(code, output.slice(-3000)).toBe(0);
  for (const label of Object.values(FAULT_LABELS)) {
    const row = output.split("\n").find((l) => l.startsWith(`| ${label} |`));
    expect(row, `fault row "${label}"`).toBeDefined();
    expect(Number(row!.split("|")[2]), `count of "${label}"`).toBeGreaterThanOrEqual(1);
  }
  // The late duplicates really came late: most after at least 300 newer events of their member.
  const late =
    /of the duplicate sends: (\d+) late duplicates \((\d+) after >= 300 newer events of their member, at most (\d+)\)/.exec(
      output,
    );
  expect(late, "the late duplicates line").not.toBeNull();
  const [sent, atDistance, maxDistance] = late!.slice(1).map(Number) as [number, number, number];
  expect(sent).toBeGreaterThanOrEqual(100);
  expect(atDistance).toBeGreaterThanOrEqual(0.9 * sent);
  expect(maxDistance).toBeGreaterThanOrEqual(300);
  const kills = output
    .split("\n")
    .find((l) => l.startsWith(`| ${FAULT_LABELS["consumer-kill"]} |`));
  expect(Number(kills!.split("|")[2])).toBeGreaterThanOrEqual(8);
  const invariants = output
    .slice(output.indexOf("invariants:"))
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| invariant") && !l.startsWith("|---"));
  expect(invariants.length).toBeGreaterThanOrEqual(12);
  for (const row of invariants) {
    expect(row).toMatch(/\| held \|$/);
    expect(Number(row.split("|")[2]!.replaceAll(",", "")), row).toBeGreaterThan(0);
  }
  expect(output).toContain("every invariant held");
});
