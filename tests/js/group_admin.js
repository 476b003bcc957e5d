// Like admin.js (one kafkajs admin call, JSON result), but errors keep the per-group details
// that kafkajs attaches to KafkaJSDeleteGroupsError (.groups: [{groupId, errorCode, type}]).
// Usage: node group_admin.js BOOTSTRAP OP 'JSON-ARRAY-OF-ARGS'
// Prints {"ok": true, "result": ...} or {"ok": false, "error": {..., "groups": [...]}}; exit 0.
'use strict'
const { makeKafka, errorJson, emit } = require('./common')

function groupErrors (e) {
  return (e.groups || []).map(g => ({ groupId: g.groupId, errorCode: g.errorCode, type: g.error && g.error.type }))
}

async function main () {
  const [bootstrap, op, argsJson] = process.argv.slice(2)
  const args = argsJson ? JSON.parse(argsJson) : []
  const admin = makeKafka(bootstrap, 'minikora-tests-group-admin').admin()
  await admin.connect()
  try {
    if (typeof admin[op] !== 'function') throw new Error('no admin op ' + op)
    const result = await admin[op](...args)
    emit({ ok: true, result: result === undefined ? null : result })
  } catch (e) {
    emit({ ok: false, error: { ...errorJson(e), groups: groupErrors(e) } })
  } finally {
    await admin.disconnect()
  }
}

main().then(() => process.exit(0), e => { emit({ ok: false, error: errorJson(e) }); process.exit(0) })
