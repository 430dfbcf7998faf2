// The scenarios that need several processes (stampede, propagation, mixed)
// fork their own file with 'worker' as the first argument. `Worker` is one
// such process seen from the parent (its messages by type, its errors, its
// exit); `runWorker` is the worker's own side.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** process.send, resolved once the message is written to the channel (so that a disconnect right after cannot drop it). */
export function sendToParent(message) {
  return new Promise((resolve, reject) => process.send(message, (error) => (error ? reject(error) : resolve())))
}

export class Worker {
  #inbox = []
  #waiters = []
  #exit
  /**
   * @param {string | URL} script the scenario file, forked as `node script worker ...args`
   * @param {string[]} args
   * @param {{ serialization?: 'json' | 'advanced' }} [options] 'advanced' sends typed arrays (latency samples) without JSON
   */
  constructor(script, args, { serialization = 'json' } = {}) {
    // Worker output goes to our stderr so that it cannot mix into the tables on stdout.
    this.child = fork(fileURLToPath(script), ['worker', ...args], { stdio: ['ignore', 2, 2, 'ipc'], serialization })
    this.child.on('message', (message) => {
      this.#inbox.push(message)
      this.#deliver()
    })
    this.#exit = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    // 'exit' can come before the last messages were read off the IPC channel; the
    // channel's 'disconnect' comes after them. Only with both is nothing more coming.
    const disconnected = new Promise((resolve) => this.child.once('disconnect', resolve))
    Promise.all([this.#exit, disconnected]).then(([{ code, signal }]) => {
      this.gone = `worker exited (${signal ?? `code ${code}`})`
      this.#deliver()
    })
  }
  send(message) {
    this.child.send(message)
  }
  #deliver() {
    for (const waiter of [...this.#waiters]) {
      const index = this.#inbox.findIndex((m) => m.type === waiter.type || m.type === 'error')
      if (index >= 0) {
        const [message] = this.#inbox.splice(index, 1)
        this.#settle(waiter, message.type === 'error' ? new Error(message.message) : null, message)
      } else if (this.gone) this.#settle(waiter, new Error(this.gone))
    }
  }
  #settle(waiter, error, message) {
    this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
    clearTimeout(waiter.timer)
    if (error) waiter.reject(error)
    else waiter.resolve(message)
  }
  /** The next message of `type`; rejects on the worker's 'error' message, its exit, or the timeout. */
  next(type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const waiter = { type, resolve, reject }
      waiter.timer = setTimeout(() => this.#settle(waiter, new Error(`no '${type}' from the worker within ${timeoutMs} ms`)), timeoutMs)
      this.#waiters.push(waiter)
      this.#deliver()
    })
  }
  /** Resolves once the worker exited; rejects if it is still alive after the timeout (open handles). */
  async exited(timeoutMs) {
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`worker did not exit within ${timeoutMs} ms of closing its cache`)), timeoutMs)
    })
    try {
      return await Promise.race([this.#exit, timeout])
    } finally {
      clearTimeout(timer)
    }
  }
  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

/** Messages from the parent, in order, as promises (none are lost between awaits). */
class Inbox {
  #queue = []
  #waiting = []
  #onMessage = (message) => {
    const resolve = this.#waiting.shift()
    if (resolve) resolve(message)
    else this.#queue.push(message)
  }
  #leaving = false
  constructor() {
    process.on('message', this.#onMessage)
    // The parent went away without telling us: nothing left to report to.
    process.once('disconnect', () => {
      if (!this.#leaving) process.exit(1)
    })
  }
  next() {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift())
    return new Promise((resolve) => this.#waiting.push(resolve))
  }
  /** Disconnects from the parent; the process then exits once the contestant left no handles open. */
  close() {
    this.#leaving = true
    process.off('message', this.#onMessage)
    if (process.connected) process.disconnect()
  }
}

/**
 * A worker process's life: listen to the parent from the start, open the
 * contestant, run `body(contestant, inbox)`, report a failure as an 'error'
 * message, and always close the contestant and disconnect, so that the
 * process exits only if the contestant left no handles open.
 */
export async function runWorker(open, body) {
  const inbox = new Inbox()
  let contestant
  try {
    contestant = await open()
    await body(contestant, inbox)
  } catch (error) {
    await sendToParent({ type: 'error', message: String(error?.message ?? error) })
  } finally {
    await contestant?.close().catch(() => {})
    inbox.close()
  }
}
