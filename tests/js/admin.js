// Run one kafkajs admin call and print its result as JSON.  Usage:
//   node admin.js BOOTSTRAP OP 'JSON-ARRAY-OF-ARGS'
// OP is any kafkajs admin method (createTopics, deleteTopics, listTopics, fetchTopicMetadata,
// fetchTopicOffsets, fetchTopicOffsetsByTimestamp, describeConfigs, describeCluster, ...).
// Prints {"ok": true, "result": ...} or {"ok": false, "error": {name, type, code, errors...}}.
// Exit status is 0 either way (the caller judges); 2 on a usage error.
'use strict'
const { makeKafka, errorJson, emit } = require('./common')

async function main () {
  const [bootstrap, op, argsJson] = process.argv.slice(2)
  if (!bootstrap || !op) { emit({ ok: false, error: { message: 'usage' } }); process.exit(2) }
  const args = argsJson ? JSON.parse(argsJson) : []
  const admin = makeKafka(bootstrap, 'minikora-tests-admin').admin()
  await admin.connect()
  try {
    if (typeof admin[op] !== 'function') throw new Error('no admin op ' + op)
    // kafkajs 2.2.4's deleteTopicRecords needs the topic's metadata loaded first
    if (op === 'deleteTopicRecords' && args[0] && args[0].topic) await admin.fetchTopicMetadata({ topics: [args[0].topic] })
    const result = await admin[op](...args)
    emit({ ok: true, result: result === undefined ? null : result })
  } catch (e) {
    emit({ ok: false, error: errorJson(e) })
  } finally {
    await admin.disconnect()
  }
}

main().then(() => process.exit(0), e => { emit({ ok: false, error: errorJson(e) }); process.exit(0) })
