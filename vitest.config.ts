import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/harness/global-setup.ts"],
    setupFiles: ["test/harness/setup-env.ts"],
    // Tests share one control plane and one set of services on 2 cores: keep parallelism modest.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: {
          name: "parallel",
          include: ["test/**/*.test.ts", "operator/**/*.test.ts", "runtime/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/*.serial.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Files that restart the shared services (hack/services.sh restart): alone, after the rest.
        extends: true,
        test: {
          name: "serial",
          include: ["test/**/*.serial.test.ts"],
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
