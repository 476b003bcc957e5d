// One kafkajs consumer-group member, driven by tests/groups_util.py (JsMember).  Usage:
//   node group_consumer.js --bootstrap H:P,... --topic T --group G --name N
//        [--session 6000] [--heartbeat 300] [--rebalance 10000] [--instance ID]
// Prints JSON lines on stdout:
//   {"ev":"assign","memberId":..,"leader":bool,"partitions":[..]}   after every JoinGroup+SyncGroup
//   {"ev":"rebalancing"}                                               the runner saw a rebalance
//   {"ev":"recs","p":P,"recs":[[offset,key],...]}                      one fetched batch (committed after)
//   {"ev":"crash"|"error","error":{..}}                                 kafkajs gave up
//   {"ev":"stopped"}                                                    after "stop"
// Reads commands on stdin: "stop" (disconnect: commit, LeaveGroup, exit 0) and "crash" (exit at
// once without LeaveGroup, as a killed process would).  EOF on stdin = "stop".
//
// --instance ID: kafkajs 2.2.4 has no groupInstanceId option, but its JoinGroup v5, SyncGroup v3,
// Heartbeat v3 and LeaveGroup v3 request builders carry the field; this script wraps them to
// send it, which makes the member static (KIP-345).  OffsetCommit stays at kafkajs's v5, which
// has no instance id field (Kafka accepts that for a static member).
'use strict'
const { makeKafka, errorJson, emit } = require('./common')
const { requests } = require('kafkajs/src/protocol/requests')

function parseArgs (argv) {
  const a = { session: 6000, heartbeat: 300, rebalance: 10000 }
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1]
  for (const k of ['session', 'heartbeat', 'rebalance']) a[k] = parseInt(a[k], 10)
  if (!a.bootstrap || !a.topic || !a.group) throw new Error('need --bootstrap --topic --group')
  return a
}

function makeStatic (instanceId) {
  for (const def of [requests.JoinGroup, requests.SyncGroup, requests.Heartbeat, requests.LeaveGroup]) {
    const orig = def.protocol
    def.protocol = ({ version }) => {
      const build = orig({ version })
      return args => build({ ...args, groupInstanceId: instanceId })
    }
  }
}

async function main () {
  const a = parseArgs(process.argv.slice(2))
  if (a.instance) makeStatic(a.instance)
  const kafka = makeKafka(a.bootstrap, a.name || 'minikora-tests-group')
  const consumer = kafka.consumer({
    groupId: a.group,
    sessionTimeout: a.session,
    rebalanceTimeout: a.rebalance,
    heartbeatInterval: a.heartbeat,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 }
  })
  const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events
  consumer.on(GROUP_JOIN, e => emit({
    ev: 'assign',
    memberId: e.payload.memberId,
    leader: e.payload.isLeader,
    partitions: (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y)
  }))
  consumer.on(REBALANCING, () => emit({ ev: 'rebalancing' }))
  consumer.on(CRASH, e => emit({ ev: 'crash', error: errorJson(e.payload.error), restart: e.payload.restart }))

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    try {
      await consumer.disconnect()
      emit({ ev: 'stopped' })
      process.exit(0)
    } catch (e) {
      emit({ ev: 'error', error: errorJson(e) })
      process.exit(1)
    }
  }
  let buf = ''
  process.stdin.on('data', d => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const cmd = buf.slice(0, i).trim()
      buf = buf.slice(i + 1)
      if (cmd === 'crash') process.exit(0)
      if (cmd === 'stop') stop()
    }
  })
  process.stdin.on('end', stop)

  await consumer.connect()
  await consumer.subscribe({ topic: a.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: true,
    autoCommitThreshold: 1,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
      if (batch.messages.length === 0) return
      emit({
        ev: 'recs',
        p: batch.partition,
        recs: batch.messages.map(m => [parseInt(m.offset, 10), m.key === null ? null : m.key.toString()])
      })
      resolveOffset(batch.messages[batch.messages.length - 1].offset)
      await commitOffsetsIfNecessary()
    }
  })
}

main().catch(e => { emit({ ev: 'error', error: errorJson(e) }); process.exit(1) })
