import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "native/test/**/*.test.ts"],
    // The native addon holds process-wide backend state: run test files in child processes.
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
