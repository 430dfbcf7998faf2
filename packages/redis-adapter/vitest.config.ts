import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'redis-adapter',
    include: ['test/**/*.test.ts'],
    globalSetup: ['../../tests/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
