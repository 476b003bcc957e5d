// kafkajs against a tenant with a producer quota: produce as fast as kafkajs can for SECONDS
// (CONCURRENCY sends of BATCH records of SIZE bytes in flight) over SASL_PLAINTEXT PLAIN, and
// report what the client saw of the broker's throttling (KIP-219).  kafkajs 2.2 throttles itself
// on a Produce v6+ answer with a ThrottleTimeMs: it logs "Client side throttling in effect for
// Nms" (debug) and holds later requests in its request queue, which the
// producer.events.REQUEST_QUEUE_SIZE instrumentation event reports (it has no
// request.throttle event).  Prints one JSON line:
// {"ok": true, "bytes": B, "records": N, "seconds": S, "throttle_logs": n, "throttle_ms_max": m,
//  "queue_events": q, "queue_max": k, "pending_ms_max": p} or {"ok": false, "error": {...}}.
// Usage: node throttle_produce.js BOOTSTRAP KEY SECRET TOPIC SECONDS [CONCURRENCY BATCH SIZE]
'use strict'
const { Kafka, logLevel } = require('kafkajs')
const { errorJson, emit } = require('./common')

async function main () {
  const [bootstrap, key, secret, topic, secStr, concStr, batchStr, sizeStr] = process.argv.slice(2)
  const seconds = parseFloat(secStr)
  const concurrency = parseInt(concStr || '4', 10)
  const batch = parseInt(batchStr || '100', 10)
  const size = parseInt(sizeStr || '1000', 10)
  const seen = { throttle_logs: 0, throttle_ms_max: 0, queue_events: 0, queue_max: 0, pending_ms_max: 0 }
  // Keep only the throttling lines of kafkajs's debug log.
  const logCreator = () => ({ log }) => {
    const m = /Client side throttling in effect for (\d+)ms/.exec(log.message || '')
    if (m) {
      seen.throttle_logs++
      seen.throttle_ms_max = Math.max(seen.throttle_ms_max, parseInt(m[1], 10))
    }
  }
  const kafka = new Kafka({
    clientId: 'minikora-throttle-js',
    brokers: bootstrap.split(','),
    sasl: { mechanism: 'plain', username: key, password: secret },
    logLevel: logLevel.DEBUG,
    logCreator,
    connectionTimeout: 5000,
    requestTimeout: 60000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 }
  })
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  producer.on(producer.events.REQUEST_QUEUE_SIZE, e => {
    seen.queue_events++
    seen.queue_max = Math.max(seen.queue_max, e.payload.queueSize)
  })
  producer.on(producer.events.REQUEST, e => {
    if (e.payload.apiName === 'Produce') seen.pending_ms_max = Math.max(seen.pending_ms_max, e.payload.pendingDuration)
  })
  await producer.connect()
  const value = 'x'.repeat(size)
  let bytes = 0
  let records = 0
  const t0 = Date.now()
  const worker = async () => {
    while (Date.now() - t0 < seconds * 1000) {
      const messages = []
      for (let i = 0; i < batch; i++) messages.push({ value })
      await producer.send({ topic, acks: -1, messages })
      bytes += batch * size
      records += batch
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    await producer.disconnect()
  }
  emit({ ok: true, bytes, records, seconds: (Date.now() - t0) / 1000, ...seen })
}

main().then(() => process.exit(0), e => { emit({ ok: false, error: errorJson(e) }); process.exit(1) })
