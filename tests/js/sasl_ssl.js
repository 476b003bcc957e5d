// kafkajs over SASL_SSL with mechanism PLAIN (a tenant's API key), as against Confluent Cloud:
// create a topic, produce N records, consume them back with a group, and print one JSON line:
// {"ok": true, "produced": N, "consumed": M, "values": [...]} or {"ok": false, "error": {...}}.
// Usage: node sasl_ssl.js BOOTSTRAP CA_FILE KEY SECRET TOPIC N
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const { errorJson, emit } = require('./common')

async function main () {
  const [bootstrap, caFile, key, secret, topic, nStr] = process.argv.slice(2)
  const n = parseInt(nStr, 10)
  const kafka = new Kafka({
    clientId: 'minikora-sasl-ssl',
    brokers: bootstrap.split(','),
    ssl: { ca: [fs.readFileSync(caFile, 'utf-8')] },
    sasl: { mechanism: 'plain', username: key, password: secret },
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < n; i++) messages.push({ value: 'js-' + i })
  await producer.send({ topic, messages, acks: -1 })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: 'g-' + topic, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length >= n) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  emit({ ok: true, produced: n, consumed: values.length, values })
}

main().catch(e => { emit({ ok: false, error: errorJson(e) }); process.exit(1) })
