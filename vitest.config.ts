import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // files load native models and start servers; on a 2-core machine they run one at a time
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
