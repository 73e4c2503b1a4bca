// Test projects: `unit` (pure code beside its source, no services), `integration`
// (test/integration and test/e2e against the real stack, found or started by the global setup)
// and `chaos` (the 2-minute chaos run on its own stack, test/chaos/*.chaos.test.ts).
import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["services/*/src/**/*.test.ts", "test/chaos/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/chaos/**/*.chaos.test.ts"],
          environment: "node",
          // Some pure tests plan whole loads or run fast-check properties: a few seconds alone,
          // several times that on a loaded 2-core machine. The limit is for a hang, not a speed.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Files run in parallel; each isolates itself with its own topics, keys and database.
          fileParallelism: true,
          maxWorkers: 2,
          // kafkajs 2.2.4 arms its request queue's throttle timer with a negative delay (its
          // throttledUntil starts at -1); Node runs it at once as kafkajs meant and warns. Off in
          // the workers and in the service processes the tests start (they inherit NODE_OPTIONS).
          execArgv: ["--disable-warning=TimeoutNegativeWarning"],
          env: {
            NODE_OPTIONS:
              `${process.env.NODE_OPTIONS ?? ""} --disable-warning=TimeoutNegativeWarning`.trim(),
          },
        },
      },
      {
        test: {
          name: "chaos",
          include: ["test/chaos/**/*.chaos.test.ts"],
          environment: "node",
          // One run: its own stack start, two minutes of load and faults, drain, check.
          testTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
