import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'opentelemetry',
    include: ['test/**/*.test.ts'],
  },
})
