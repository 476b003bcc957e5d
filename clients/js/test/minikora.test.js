// The npm package (clients/js) with kafkajs: start, bootstrap list, reset, faults, tenants,
// stop; the binary search; and the GitHub Action's main and post scripts (action.yml), run as
// the runner runs them.  node --test clients/js/test/   (kafkajs from tests/js/node_modules)
'use strict'

const { test } = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..', '..')
const { Kafka, logLevel } = require(path.join(REPO, 'tests', 'js', 'node_modules', 'kafkajs'))
const { Minikora, MinikoraError, findBinary } = require('..')

function kafka (brokers, extra = {}) {
  return new Kafka(Object.assign({ clientId: 'minikora-js-test', brokers, logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100 } }, extra))
}

// The process has exited: no such pid, or a zombie its new parent has not reaped yet.
function gone (pid) {
  try { process.kill(pid, 0) } catch (e) { return true }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch (e) {
    return true
  }
}

async function roundTrip (k, topic, n = 5) {
  const p = k.producer()
  await p.connect()
  await p.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ value: `v${i}` })) })
  await p.disconnect()
  const c = k.consumer({ groupId: `g-${topic}-${Date.now()}` })
  await c.connect()
  await c.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${n} in 30 s`)), 30000)
    c.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString())
        if (got.length === n) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await c.disconnect()
  return got
}

test('start, kafkajs round trip, reset, faults, tenants, stop', { timeout: 120000 }, async () => {
  const mk = await Minikora.start({ brokers: 3, azs: 3 })
  try {
    assert.strictEqual(mk.brokers.length, 3)
    assert.match(mk.brokers[0], /^127\.0\.0\.1:\d+$/)
    assert.strictEqual(mk.bootstrap, mk.brokers.join(','))
    assert.match(mk.admin, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.strictEqual(mk.adminToken.length, 64)
    // the bundled S3 server, as the ready file names it
    assert.match(mk.s3.url, /^http:\/\//)
    assert.strictEqual(mk.s3.bucket, 'minikora')
    const k = kafka(mk.brokers)
    await mk.createTopic('js-orders', { partitions: 3, replicationFactor: 3 })
    assert.deepStrictEqual((await roundTrip(k, 'js-orders')).sort(), ['v0', 'v1', 'v2', 'v3', 'v4'])

    // Faults, under the same names as the Python package's (camelCase here).
    const b = await mk.crashBroker(2)
    assert.strictEqual(b.state, 'crashed')
    assert.deepStrictEqual((await mk.events({ type: 'broker_crashed' })).map((e) => e.broker), [2])
    assert.deepStrictEqual((await roundTrip(k, 'js-after-crash', 3)).sort(), ['v0', 'v1', 'v2'])
    assert.strictEqual((await mk.startBroker(2)).running, true)
    assert.strictEqual((await mk.stopBroker(3)).state, 'stopped')
    assert.strictEqual((await mk.restartBroker(3)).running, true)
    assert.strictEqual((await mk.azDown(1)).brokers_changed, 1)
    assert.strictEqual((await mk.azUp('az-1')).brokers_changed, 1)
    await assert.rejects(mk.crashBroker(99), (e) => e instanceof MinikoraError && e.status === 404)

    // reset empties the cluster between tests.
    assert.ok((await mk.cluster()).topics >= 2)
    await mk.reset()
    assert.strictEqual((await mk.cluster()).topics, 0)

    // A tenant and its key, used over SASL PLAIN by kafkajs.
    await mk.createTenant('acme')
    const { key, secret } = await mk.createApiKey('acme')
    const ks = kafka(mk.brokers, { sasl: { mechanism: 'plain', username: key, password: secret } })
    assert.deepStrictEqual((await roundTrip(ks, 'acme-orders', 2)).sort(), ['v0', 'v1'])
    await mk.deleteTenant('acme')

    // The advertised addresses can be changed; a port alone keeps the host.
    const adv = await mk.setAdvertised({ 3: 45003 })
    assert.strictEqual(adv.brokers[2].advertised, '127.0.0.1:45003')
    await mk.setAdvertised({ 3: null })
    assert.deepStrictEqual((await mk.advertised()).bootstrap, mk.bootstrap)
  } finally {
    const dir = mk.ready && mk.ready.data_dir
    assert.strictEqual(await mk.stop(), 0)
    assert.ok(dir && !fs.existsSync(dir), 'data directory removed')
  }
})

test('findBinary: explicit, environment, errors', () => {
  const real = findBinary()
  assert.ok(fs.statSync(real).isFile())
  assert.strictEqual(findBinary(real), path.resolve(real))
  assert.throws(() => findBinary('/nonexistent/minikora'), MinikoraError)
})

test('a start that fails says why', { timeout: 30000 }, async () => {
  await assert.rejects(Minikora.start({ args: ['--no-such-flag'] }),
    (e) => e instanceof MinikoraError && /exited \(2\)/.test(e.message) && /unknown option/.test(e.message))
})

test('the GitHub Action: main starts and exports, post stops', { timeout: 120000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'minikora-action-'))
  const files = { GITHUB_ENV: 'env', GITHUB_STATE: 'state', GITHUB_OUTPUT: 'output' }
  const env = Object.assign({}, process.env, { RUNNER_TEMP: tmp, INPUT_BROKERS: '2', INPUT_AZS: '2',
    INPUT_ARGS: '--set num.partitions=2', INPUT_IMAGE: '', INPUT_BUILD: 'false', MINIKORA_BIN: findBinary() })
  for (const [k, f] of Object.entries(files)) {
    env[k] = path.join(tmp, f)
    fs.writeFileSync(env[k], '')
  }
  const main = spawnSync(process.execPath, [path.join(REPO, 'ci', 'action', 'main.js')], { env, encoding: 'utf8', timeout: 60000 })
  assert.strictEqual(main.status, 0, main.stdout + main.stderr)
  const kv = (f) => Object.fromEntries(fs.readFileSync(path.join(tmp, f), 'utf8').trim().split('\n')
    .filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  const exported = kv('env')
  const state = kv('state')
  const output = kv('output')
  assert.match(exported.KAFKA_BOOTSTRAP, /^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/)
  assert.match(exported.MINIKORA_ADMIN, /^http:\/\/127\.0\.0\.1:\d+$/)
  assert.strictEqual(exported.MINIKORA_ADMIN_TOKEN.length, 64)
  assert.strictEqual(output.bootstrap, exported.KAFKA_BOOTSTRAP)
  assert.ok(main.stdout.includes(`::add-mask::${exported.MINIKORA_ADMIN_TOKEN}`), main.stdout)
  const pid = Number(state.pid)
  assert.ok(pid > 0)
  process.kill(pid, 0) // the cluster outlived main.js, as it must for the job's later steps

  // The job's own steps: a client with the exported variables.
  const k = kafka(exported.KAFKA_BOOTSTRAP.split(','))
  assert.deepStrictEqual((await roundTrip(k, 'action-t', 2)).sort(), ['v0', 'v1'])
  const res = await fetch(exported.MINIKORA_ADMIN + '/v1/topics/action-t')
  assert.strictEqual((await res.json()).topic.partitions, 2)

  const postEnv = Object.assign({}, env)
  for (const [k2, v] of Object.entries(state)) postEnv[`STATE_${k2}`] = v
  const post = spawnSync(process.execPath, [path.join(REPO, 'ci', 'action', 'post.js')], { env: postEnv, encoding: 'utf8', timeout: 60000 })
  assert.strictEqual(post.status, 0, post.stdout + post.stderr)
  assert.ok(gone(pid), 'the cluster is gone after the post step')
  assert.ok(!fs.existsSync(state.dir), 'the ready directory is removed')
  fs.rmSync(tmp, { recursive: true, force: true })
})

test('Docker: an image on random host ports', { timeout: 180000 }, async (t) => {
  const image = process.env.MINIKORA_IMAGE
  if (!image) return t.skip('MINIKORA_IMAGE is not set (the Docker path runs an image you built)')
  const info = spawnSync('docker', ['info'], { encoding: 'utf8', timeout: 30000 })
  if (info.error || info.status !== 0) return t.skip('no Docker engine reachable (`docker info` failed)')
  const mk = await Minikora.start({ brokers: 2, image })
  try {
    assert.ok(mk.container)
    assert.deepStrictEqual((await roundTrip(kafka(mk.brokers), 'docker-t', 2)).sort(), ['v0', 'v1'])
  } finally {
    await mk.stop()
  }
})
