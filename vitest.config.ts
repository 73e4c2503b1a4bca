// Test projects: `unit` (pure code beside its source, no services) and `integration`
// (test/integration and test/e2e against the real stack, found or started by the global setup).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["services/*/src/**/*.test.ts"],
          environment: "node",
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
        },
      },
    ],
  },
});
