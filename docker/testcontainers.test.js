// docker/testcontainers.test.js -- the Testcontainers recipe of the README, run for real: the
// minikora image started by Testcontainers for Node.js on random host ports, told its mapped
// port through the advertised-address mapping (PUT /v1/advertised), then a kafkajs round trip
// (create a topic, produce, consume) through the mapped port only.
//
//   IMAGE=minikora:test node --test docker/testcontainers.test.js     (docker/test.sh runs it)
//
// testcontainers and kafkajs come from tests/js/node_modules (ci/install.sh test).  Ryuk, the
// reaper container, is an image from the public registry, which cannot be reached everywhere:
// it is turned off, and the container is stopped by the test itself.
'use strict'
process.env.TESTCONTAINERS_RYUK_DISABLED = process.env.TESTCONTAINERS_RYUK_DISABLED || 'true'
const { test } = require('node:test')
const assert = require('node:assert')
const path = require('node:path')

const MODULES = path.join(__dirname, '..', 'tests', 'js', 'node_modules')
const { GenericContainer, Wait } = require(path.join(MODULES, 'testcontainers'))
const { Kafka, logLevel } = require(path.join(MODULES, 'kafkajs'))

const IMAGE = process.env.IMAGE || 'minikora:test'
const TOKEN = 'testcontainers-' + process.pid

async function admin (url, method, route, body) {
  const r = await fetch(url + route, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await r.text()
  assert.ok(r.ok, `${method} ${route} -> ${r.status} ${text}`)
  return JSON.parse(text)
}

test('Testcontainers: random host ports, the advertised mapping, a kafkajs round trip', { timeout: 180000 }, async () => {
  const container = await new GenericContainer(IMAGE)
    .withEnvironment({ MINIKORA_ADMIN_TOKEN: TOKEN })
    .withCommand(['serve', '--ephemeral', '--brokers', '1', '--tls-port', '-1'])
    .withExposedPorts(9092, 8080) // published on random host ports
    .withWaitStrategy(Wait.forHttp('/readyz', 8080).forStatusCode(200))
    .withStartupTimeout(60000)
    .start()
  try {
    const host = container.getHost()
    const kafkaPort = container.getMappedPort(9092)
    const url = `http://${host}:${container.getMappedPort(8080)}`
    assert.notStrictEqual(kafkaPort, 9092)

    // Before: the broker advertises the port it listens on, which is not the one we reach.
    const before = await admin(url, 'GET', '/v1/advertised')
    assert.strictEqual(before.brokers[0].port, 9092)
    // Tell it the mapped port, as the Testcontainers modules for Kafka do once it is known.
    const after = await admin(url, 'PUT', '/v1/advertised', { 1: `${host}:${kafkaPort}` })
    assert.strictEqual(after.bootstrap, `${host}:${kafkaPort}`)

    const kafka = new Kafka({ clientId: 'testcontainers', brokers: [`${host}:${kafkaPort}`], logLevel: logLevel.NOTHING })
    const topic = 'tc-' + process.pid
    const adm = kafka.admin()
    await adm.connect()
    await adm.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    const md = await adm.fetchTopicMetadata({ topics: [topic] })
    assert.strictEqual(md.topics[0].partitions.length, 1)
    await adm.disconnect()

    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, messages: [{ key: 'k', value: 'through the mapped port' }] })
    await producer.disconnect()

    const consumer = kafka.consumer({ groupId: 'tc-group-' + process.pid })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const got = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no record within 30 s')), 30000)
      consumer.run({
        eachMessage: async ({ message }) => {
          clearTimeout(timer)
          resolve(message.value.toString())
        }
      }).catch(reject)
    })
    await consumer.disconnect()
    assert.strictEqual(got, 'through the mapped port')
  } finally {
    await container.stop({ timeout: 10000 })
  }
})
