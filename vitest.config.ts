import { defineConfig } from "vitest/config";

/**
 * Three lanes. `unit` (`*.unit.test.ts`, `npm run test:unit`): pure tests — desired state, golden
 * files, codecs, parsers, models run in-process — that need no service, so they run in seconds on
 * a bare checkout. `parallel` and `serial` run against the real services and one throwaway control
 * plane that the global setup starts. `make test` runs all three.
 */
const integration = {
  globalSetup: ["test/harness/global-setup.ts"],
  setupFiles: ["test/harness/setup-env.ts"],
};

export default defineConfig({
  test: {
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
          name: "unit",
          include: ["test/**/*.unit.test.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          ...integration,
          name: "parallel",
          include: ["test/**/*.test.ts", "operator/**/*.test.ts", "runtime/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/*.serial.test.ts", "**/*.unit.test.ts"],
          sequence: { groupOrder: 1 },
        },
      },
      {
        // Files that restart the shared services (hack/services.sh restart): alone, after the rest.
        extends: true,
        test: {
          ...integration,
          name: "serial",
          include: ["test/**/*.serial.test.ts"],
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
