// minikora for JavaScript test suites: start a cluster, get its bootstrap list, reset it between
// tests, inject faults, stop it.
//
//   const { Minikora } = require('minikora')
//   const mk = await Minikora.start({ brokers: 3 })
//   new Kafka({ brokers: mk.brokers })          // ['127.0.0.1:40001', ...]
//   await mk.crashBroker(2); await mk.reset()
//   await mk.stop()
//
// Where minikora comes from, first match wins (as in the Python package, clients/python):
//   1. Docker, when `image` (or $MINIKORA_IMAGE) is set: broker and admin ports are published
//      on random host ports and the brokers are told their mapped ports (PUT /v1/advertised).
//   2. The binary `binary`, else $MINIKORA_BIN, else `minikora` on $PATH.
//   3. A minikora source tree ($MINIKORA_SRC, else upwards from the current directory and from
//      this file) holding src/main.c: its ./minikora, built with `make minikora` when missing.
// A local cluster runs `minikora serve --ephemeral --port 0 --ready-file ...`: free ports, no
// data left behind, everything read from the ready file.
//
// The admin actions have the Python package's names in camelCase: reset, crashBroker,
// stopBroker, startBroker, restartBroker, azDown, azUp, createTopic, deleteTopic, createTenant,
// createApiKey, deleteTenant, setAdvertised, advertised, cluster, events.  Every acting call
// sends the admin token.  Node 18 or later (global fetch); no dependencies.
'use strict'

const { spawn, spawnSync } = require('child_process')
const crypto = require('crypto')
const fs = require('fs')
const os = require('os')
const path = require('path')

class MinikoraError extends Error {
  constructor (message, status, body) {
    super(message)
    this.name = 'MinikoraError'
    this.status = status
    this.body = body
  }
}

// ------------------------------------------------------------------------- finding the binary
function isExecutable (p) {
  try {
    fs.accessSync(p, fs.constants.X_OK)
    return fs.statSync(p).isFile()
  } catch (e) {
    return false
  }
}

function sourceTree (start) {
  let d = path.resolve(start)
  for (;;) {
    const mf = path.join(d, 'Makefile')
    if (fs.existsSync(path.join(d, 'src', 'main.c')) && fs.existsSync(mf) &&
        fs.readFileSync(mf, 'utf8').includes('minikora')) return d
    const up = path.dirname(d)
    if (up === d) return null
    d = up
  }
}

function findBinary (binary, { build = true } = {}) {
  for (const cand of [binary, process.env.MINIKORA_BIN]) {
    if (cand) {
      if (!isExecutable(cand)) throw new MinikoraError(`minikora binary ${cand} is not an executable file`)
      return path.resolve(cand)
    }
  }
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'minikora'))) return path.join(dir, 'minikora')
  }
  for (const root of [process.env.MINIKORA_SRC, process.cwd(), __dirname]) {
    const tree = root && sourceTree(root)
    if (!tree) continue
    const exe = path.join(tree, 'minikora')
    if (!fs.existsSync(exe) && build) {
      const r = spawnSync('make', ['-C', tree, `-j${Math.min(os.cpus().length || 2, 4)}`, 'minikora'],
        { encoding: 'utf8' })
      if (r.status !== 0) throw new MinikoraError(`make minikora failed in ${tree}:\n${(r.stdout + r.stderr).slice(-3000)}`)
    }
    if (isExecutable(exe)) return exe
  }
  throw new MinikoraError('no minikora binary: set MINIKORA_BIN, put minikora on PATH, run from a minikora ' +
    'checkout (or set MINIKORA_SRC), or set MINIKORA_IMAGE to use Docker')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ------------------------------------------------------------------------------- the cluster
class Minikora {
  // options: brokers, azs, args (extra `serve` flags), binary, image, env, readyTimeoutMs,
  // detached (the process outlives this one: for the GitHub Action), logFile.
  constructor (options = {}) {
    this.options = options
    this.image = options.image !== undefined ? options.image : (process.env.MINIKORA_IMAGE || null)
    this.proc = null
    this.pid = null
    this.container = null
    this.bootstrap = null // "host:port,..."
    this.brokers = [] // ["host:port", ...] for kafkajs
    this.admin = null
    this.adminToken = null
    this.s3 = null
    this.ready = null
    this.tmp = null
    this.logFile = options.logFile || null
  }

  static async start (options) {
    return new Minikora(options).start()
  }

  serveArgs () {
    const o = this.options
    const a = []
    if (o.brokers !== undefined) a.push('--brokers', String(o.brokers))
    if (o.azs !== undefined) a.push('--azs', String(o.azs))
    return a.concat((o.args || []).map(String))
  }

  async start () {
    if (this.pid || this.container) return this
    if (this.image) await this.startDocker()
    else await this.startLocal()
    this.brokers = this.bootstrap.split(',')
    return this
  }

  async startLocal () {
    const exe = findBinary(this.options.binary)
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minikora-js-'))
    const readyFile = path.join(this.tmp, 'ready.json')
    if (!this.logFile) this.logFile = path.join(this.tmp, 'minikora.log')
    const log = fs.openSync(this.logFile, 'a')
    const argv = ['serve', '--ephemeral', '--port', '0', '--ready-file', readyFile].concat(this.serveArgs())
    this.proc = spawn(exe, argv, {
      stdio: ['ignore', log, log],
      env: Object.assign({}, process.env, this.options.env || {}),
      detached: !!this.options.detached
    })
    fs.closeSync(log)
    this.pid = this.proc.pid
    let exited = null
    this.proc.on('exit', (code, signal) => { exited = { code, signal } })
    if (this.options.detached) this.proc.unref()
    const deadline = Date.now() + (this.options.readyTimeoutMs || 60000)
    while (!fs.existsSync(readyFile)) {
      if (exited) {
        const tail = this.logTail()
        this.cleanup()
        throw new MinikoraError(`minikora exited (${exited.code ?? exited.signal}) before it was ready:\n${tail}`)
      }
      if (Date.now() > deadline) {
        const tail = this.logTail()
        await this.stop()
        throw new MinikoraError(`minikora not ready in time:\n${tail}`)
      }
      await sleep(20) // bounded by the deadline; the ready file is renamed into place whole
    }
    this.ready = JSON.parse(fs.readFileSync(readyFile, 'utf8'))
    this.bootstrap = this.ready.bootstrap
    this.admin = this.ready.admin
    this.adminToken = this.ready.admin_token
    this.s3 = this.ready.s3 || null
  }

  docker (args, check = true) {
    const r = spawnSync('docker', args, { encoding: 'utf8', timeout: 120000 })
    if (check && r.status !== 0) throw new MinikoraError(`docker ${args.slice(0, 2).join(' ')} failed: ${(r.stderr || '').trim()}`)
    return (r.stdout || '').trim()
  }

  async startDocker () {
    const n = Number(this.options.brokers || 3)
    this.adminToken = crypto.randomBytes(16).toString('hex')
    const ports = []
    for (let i = 0; i < n; i++) ports.push('-p', `127.0.0.1::${9092 + i}`)
    this.container = this.docker(['run', '-d', '--rm', '-e', `MINIKORA_ADMIN_TOKEN=${this.adminToken}`,
      '-e', 'MINIKORA_ADVERTISE_HOST=127.0.0.1', ...ports, '-p', '127.0.0.1::8080', this.image,
      'serve', '--ephemeral', '--brokers', String(n), '--tls-port', '-1',
      ...(this.options.azs ? ['--azs', String(this.options.azs)] : []), ...(this.options.args || []).map(String)])
    const mapped = (port) => Number(this.docker(['port', this.container, `${port}/tcp`]).split('\n')[0].split(':').pop())
    this.admin = `http://127.0.0.1:${mapped(8080)}`
    const deadline = Date.now() + (this.options.readyTimeoutMs || 60000)
    for (;;) {
      try {
        await this.call('GET', '/readyz')
        break
      } catch (e) {
        if (Date.now() > deadline) {
          const logs = this.docker(['logs', '--tail', '40', this.container], false)
          await this.stop()
          throw new MinikoraError(`container not ready in time:\n${logs}`)
        }
        await sleep(100) // bounded by the deadline
      }
    }
    const mapping = {}
    for (let i = 0; i < n; i++) mapping[i + 1] = `127.0.0.1:${mapped(9092 + i)}`
    this.bootstrap = (await this.setAdvertised(mapping)).bootstrap
  }

  // Stop the cluster (SIGTERM: a clean stop that removes its data).  Resolves to the exit code
  // (0 for a clean stop), or null for a container, a detached process, or when nothing ran.
  async stop (timeoutMs = 20000) {
    let code = null
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      const p = this.proc
      const done = new Promise((resolve) => p.once('exit', (c, s) => resolve(c ?? s)))
      p.kill('SIGTERM')
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs)
      code = await done
      clearTimeout(timer)
    } else if (this.proc) {
      code = this.proc.exitCode ?? this.proc.signalCode
    } else if (this.pid) {
      code = await stopPid(this.pid, timeoutMs)
    }
    this.proc = null
    this.pid = null
    if (this.container) {
      this.docker(['rm', '-f', this.container], false)
      this.container = null
    }
    this.cleanup()
    return code
  }

  cleanup () {
    if (this.tmp) {
      this.lastLog = this.logTail()
      fs.rmSync(this.tmp, { recursive: true, force: true })
      this.tmp = null
    }
  }

  logTail (n = 40) {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-n - 1).join('\n')
    } catch (e) {
      return this.lastLog || '(no log)'
    }
  }

  // ------------------------------------------------------------------------ the admin API
  async call (method, route, body) {
    if (!this.admin) throw new MinikoraError('this cluster has no admin API (--admin-port -1)')
    const headers = {}
    if (this.adminToken) headers.Authorization = `Bearer ${this.adminToken}`
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    const res = await fetch(this.admin + route, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30000)
    })
    const text = await res.text()
    let parsed = text
    try { parsed = JSON.parse(text) } catch (e) { /* /metrics and other text */ }
    if (!res.ok) {
      const msg = parsed && parsed.message ? parsed.message : text
      throw new MinikoraError(`${method} ${route}: ${res.status} ${msg}`, res.status, parsed)
    }
    return parsed
  }

  reset () { return this.call('POST', '/v1/reset') }
  async crashBroker (id) { return (await this.call('POST', `/v1/brokers/${id}/crash`)).broker }
  async stopBroker (id) { return (await this.call('POST', `/v1/brokers/${id}/stop`)).broker }
  async startBroker (id) { return (await this.call('POST', `/v1/brokers/${id}/start`)).broker }
  async restartBroker (id) { return (await this.call('POST', `/v1/brokers/${id}/restart`)).broker }
  azDown (az) { return this.call('POST', `/v1/azs/${azName(az)}/down`) }
  azUp (az) { return this.call('POST', `/v1/azs/${azName(az)}/up`) }
  async createTopic (name, { partitions, replicationFactor, configs } = {}) {
    const body = { name }
    if (partitions !== undefined) body.partitions = partitions
    if (replicationFactor !== undefined) body.replication_factor = replicationFactor
    if (configs) body.configs = Object.fromEntries(Object.entries(configs).map(([k, v]) => [k, String(v)]))
    return (await this.call('POST', '/v1/topics', body)).topic
  }

  deleteTopic (name) { return this.call('DELETE', `/v1/topics/${encodeURIComponent(name)}`) }
  createTenant (id) { return this.call('POST', '/v1/tenants', { id }) }
  async createApiKey (tenant) {
    const j = await this.call('POST', `/v1/tenants/${encodeURIComponent(tenant)}/keys`)
    return { key: j.key, secret: j.secret }
  }

  deleteTenant (id) { return this.call('DELETE', `/v1/tenants/${encodeURIComponent(id)}`) }
  // {1: 'host:port', 2: port, 3: null}
  setAdvertised (mapping) { return this.call('PUT', '/v1/advertised', mapping) }
  advertised () { return this.call('GET', '/v1/advertised') }
  cluster () { return this.call('GET', '/v1/cluster') }
  async events ({ type, since } = {}) {
    const q = new URLSearchParams()
    if (type) q.set('type', type)
    if (since !== undefined) q.set('since', String(since))
    const s = q.toString()
    return (await this.call('GET', '/v1/events' + (s ? '?' + s : ''))).events
  }
}

function azName (az) {
  return typeof az === 'number' ? `az-${az}` : String(az)
}

function isZombie (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch (e) {
    return false
  }
}

// SIGTERM a process that is not our child (a detached cluster started by another process, as
// the GitHub Action's post step does) and wait, bounded, until it is gone.  Resolves to null.
async function stopPid (pid, timeoutMs = 20000) {
  try { process.kill(pid, 'SIGTERM') } catch (e) { return null }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { process.kill(pid, 0) } catch (e) { return null }
    if (isZombie(pid)) return null // exited; its new parent has not reaped it yet
    if (Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL') } catch (e) { /* gone */ }
      return null
    }
    await sleep(50) // bounded by the deadline
  }
}

module.exports = { Minikora, MinikoraError, findBinary, stopPid }
