import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const FIXTURE = fileURLToPath(new URL('../fixtures/instance.mjs', import.meta.url))

/** A cache instance running in a separate Node process (tests/fixtures/instance.mjs, or another fixture with the same IPC protocol). */
export class InstanceProcess {
  #child: ChildProcess
  #nextId = 0
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()

  private constructor(child: ChildProcess) {
    this.#child = child
    child.on('message', (message: { id?: number; ok?: boolean; result?: unknown; error?: { message: string } }) => {
      if (message.id === undefined) return
      const pending = this.#pending.get(message.id)
      this.#pending.delete(message.id)
      if (message.ok === true) pending?.resolve(message.result)
      else pending?.reject(new Error(message.error?.message ?? 'instance call failed'))
    })
    child.on('exit', (code, signal) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`instance exited (${code ?? signal})`))
      this.#pending.clear()
    })
  }

  static async start(env: Record<string, string>, fixture: string = FIXTURE, execArgv: string[] = []): Promise<InstanceProcess> {
    const child = fork(fixture, [], {
      execArgv,
      env: { ...process.env, ...env },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: boolean }) => {
        if (message.ready === true) {
          child.off('message', onMessage)
          resolve()
        }
      }
      child.on('message', onMessage)
      child.once('exit', (code) => reject(new Error(`instance exited before it was ready (code ${code})`)))
    })
    return new InstanceProcess(child)
  }

  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#child.send({ id, op, args })
    })
  }

  /** Closes the cache and bus, then waits for the process to exit on its own (it cannot if a handle is left open). */
  async close(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.#child.once('exit', (code) => resolve(code)))
    await this.call('close')
    return exited
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }

  /** SIGSTOP / SIGCONT: the process freezes with its sockets open, then resumes. */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal)
  }
}
