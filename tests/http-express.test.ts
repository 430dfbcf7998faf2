import { httpSuite } from './fixtures/http/suite.js'

/** @tiercache/http's expressRoute on two instance processes over real Redis, asked with fetch (the suite is shared with Fastify). */
httpSuite('express')
