// Transactions with kafkajs (issue 5).  Usage:
//   node txn_produce.js --bootstrap H:P,... --tid TXN_ID --plan '<JSON>'
// The plan is run in order; each step is one transaction:
//   {"action": "commit" | "abort",
//    "topic": T, "messages": [{"partition": P, "key": K, "value": V}, ...],
//    "offsets": {"group": G, "topic": IN, "partitions": {"0": OFFSET, ...}}   (optional)}
// or, once before the transactions, a consume step (consume-transform-produce input):
//   {"action": "consume", "group": G, "topic": IN, "count": N}
//     joins group G (no auto-commit), reads N records of IN, and remembers per partition the
//     next offset (last consumed + 1) and the values; a later step with
//     "offsets": "consumed" / "messages": "transform" uses them (values upper-cased to "topic").
// Prints one JSON line: {"ok": true, "steps": [...]} or {"ok": false, "error": {...}, "steps"}.
'use strict'
const { makeKafka, errorJson, emit } = require('./common')

function parseArgs (argv) {
  const a = {}
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1]
  if (!a.bootstrap || !a.tid || !a.plan) throw new Error('need --bootstrap, --tid and --plan')
  a.plan = JSON.parse(a.plan)
  return a
}

async function consume (kafka, step) {
  const consumer = kafka.consumer({ groupId: step.group, readUncommitted: false, maxWaitTimeInMs: 100,
    sessionTimeout: 10000, heartbeatInterval: 500, retry: { retries: 3 } })
  await consumer.connect()
  await consumer.subscribe({ topic: step.topic, fromBeginning: true })
  const got = []
  const next = {}
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed only ${got.length} of ${step.count} within 30 s`)), 30000)
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (got.length >= step.count) return
        got.push({ partition, offset: message.offset, value: message.value.toString() })
        next[partition] = String(BigInt(message.offset) + 1n)
        if (got.length >= step.count) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return { got, next }
}

async function main () {
  const a = parseArgs(process.argv.slice(2))
  const kafka = makeKafka(a.bootstrap, 'minikora-tests-txn')
  const steps = []
  let consumed = null
  const producer = kafka.producer({ transactionalId: a.tid, idempotent: true, maxInFlightRequests: 1,
    transactionTimeout: 30000, allowAutoTopicCreation: false })
  try {
    await producer.connect()
    for (const step of a.plan) {
      if (step.action === 'consume') {
        consumed = await consume(kafka, step)
        steps.push({ action: 'consume', count: consumed.got.length, next: consumed.next })
        continue
      }
      let messages = step.messages
      if (messages === 'transform') {
        messages = consumed.got.map(m => ({ partition: m.partition, value: m.value.toUpperCase() }))
      }
      const txn = await producer.transaction()
      const res = []
      try {
        if (messages && messages.length) {
          const r = await txn.send({ topic: step.topic, acks: -1, messages })
          for (const x of r) res.push({ partition: x.partition, error: x.errorCode, base: x.baseOffset })
        }
        if (step.offsets) {
          const o = step.offsets
          const parts = o.partitions === 'consumed' ? consumed.next : o.partitions
          await txn.sendOffsets({
            consumerGroupId: o.group,
            topics: [{ topic: o.topic, partitions: Object.keys(parts).map(p => ({ partition: Number(p), offset: String(parts[p]) })) }]
          })
        }
        if (step.action === 'commit') await txn.commit()
        else await txn.abort()
      } catch (e) {
        steps.push({ action: step.action, ok: false, error: errorJson(e), res })
        throw e
      }
      steps.push({ action: step.action, ok: true, res })
    }
  } catch (e) {
    await producer.disconnect().catch(() => {})
    emit({ ok: false, error: errorJson(e), steps })
    return 1
  }
  await producer.disconnect()
  emit({ ok: true, steps })
  return 0
}

main().then(rc => process.exit(rc), e => { emit({ ok: false, error: errorJson(e) }); process.exit(1) })
