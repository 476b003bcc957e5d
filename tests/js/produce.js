// Produce a deterministic set of records with kafkajs.  Usage:
//   node produce.js --bootstrap H:P,... --topic T --count N --partitions P --codec C --tag TAG
//                   [--batch 500] [--acks -1]
// Record i (same generator as tests/clients.py make_records): partition i % P,
//   key "TAG-k<i>", value "TAG|v<i>|" + "lorem-ipsum-" * (1 + i % 7), headers idx=<i>, src=TAG.
// Prints one JSON line: {"ok": true, "count": N, "offsets": {partition: [first, last]}} or
// {"ok": false, "error": {...}}; exit status 0 / 1.
'use strict'
const { registerCodecs, CODECS, makeKafka, errorJson, emit } = require('./common')

function parseArgs (argv) {
  const a = { batch: 500, acks: -1, codec: 'none', partitions: 1, count: 1, tag: 'js' }
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '')
    a[k] = argv[i + 1]
  }
  for (const k of ['batch', 'acks', 'partitions', 'count']) a[k] = parseInt(a[k], 10)
  if (!a.bootstrap || !a.topic) throw new Error('need --bootstrap and --topic')
  if (!(a.codec in CODECS)) throw new Error('unknown codec ' + a.codec)
  return a
}

function record (tag, i, partitions) {
  return {
    partition: i % partitions,
    key: `${tag}-k${i}`,
    value: `${tag}|v${i}|` + 'lorem-ipsum-'.repeat(1 + i % 7),
    headers: { idx: String(i), src: tag }
  }
}

async function main () {
  const a = parseArgs(process.argv.slice(2))
  await registerCodecs()
  const kafka = makeKafka(a.bootstrap, 'minikora-tests-produce')
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const offsets = {}
  try {
    for (let start = 0; start < a.count; start += a.batch) {
      const messages = []
      for (let i = start; i < Math.min(a.count, start + a.batch); i++) messages.push(record(a.tag, i, a.partitions))
      const res = await producer.send({ topic: a.topic, acks: a.acks, compression: CODECS[a.codec], messages })
      for (const r of res) {
        if (r.errorCode !== 0) throw new Error(`partition ${r.partition} error ${r.errorCode}`)
        const p = r.partition
        const base = parseInt(r.baseOffset, 10)
        if (!(p in offsets)) offsets[p] = [base, base]
        offsets[p][1] = base
      }
    }
  } finally {
    await producer.disconnect()
  }
  emit({ ok: true, count: a.count, offsets })
}

main().then(() => process.exit(0), e => { emit({ ok: false, error: errorJson(e) }); process.exit(1) })
