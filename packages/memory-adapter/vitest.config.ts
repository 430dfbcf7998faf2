import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'memory-adapter',
    include: ['test/**/*.test.ts'],
  },
})
