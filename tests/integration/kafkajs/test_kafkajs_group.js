#!/usr/bin/env node
// kafkajs 2.2.4 consumer groups against a running stratad (it starts no broker).
//
// usage: node test_kafkajs_group.js --broker HOST:PORT
//
//  1. restart: a consumer in group kjs-resume (eachMessage, kafkajs's
//     autoCommit: offsets committed after every batch) reads all 200 records
//     of the 4-partition topic kjs-grp, then is stopped (consumer.disconnect:
//     the last batch's commit, then LeaveGroup); 100 more records are
//     produced; a new consumer in the same group reads exactly those 100 --
//     nothing lost, nothing read twice.
//  2. split: two consumers in group kjs-split subscribe to kjs-grp and get
//     two partitions each (kafkajs's RoundRobin assigner, disjoint, covering
//     all four); between them they read all 300 records (re-reads across the
//     rebalance only within kafkajs's uncommitted window); then 100 new records
//     are each read once, by the consumer owning its partition. admin.deleteGroups
//     (DeleteGroups v1) refuses kjs-split while c1 is in it (68) and deletes it
//     once c1 left: its committed offsets are gone.
//
// Prints 'ok: ...' lines; exits 1 on the first failure.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function arg(name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}

const brokerAddr = arg('--broker') || process.env.STRATA_BROKER
if (!brokerAddr) {
  console.error('usage: node test_kafkajs_group.js --broker HOST:PORT')
  process.exit(2)
}

const TOPIC = 'kjs-grp'
const PARTS = 4

function ok(msg) {
  console.log('ok: ' + msg)
}

function eq(what, got, want) {
  const g = JSON.stringify(got)
  const w = JSON.stringify(want)
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`)
}

function sleep(ms) {
  return new Promise(r => setTimeout(r, ms))
}

async function waitFor(what, cond, timeoutMs = 40000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (cond()) return
    await sleep(50)
  }
  throw new Error('timed out waiting for: ' + what)
}

function range(a, b) {
  return Array.from({ length: b - a }, (_, i) => a + i)
}

// A group consumer recording every message it is handed and its assignment.
async function startConsumer(kafka, groupId, name) {
  const c = {
    name,
    seen: [], // "partition/offset/value"
    assigned: [],
    consumer: kafka.consumer({
      groupId,
      sessionTimeout: 6000, // the broker's group.min.session.timeout.ms
      rebalanceTimeout: 10000,
      heartbeatInterval: 300,
      maxWaitTimeInMs: 100,
    }),
  }
  c.consumer.on(c.consumer.events.GROUP_JOIN, e => {
    c.assigned = (e.payload.memberAssignment[TOPIC] || []).slice().sort()
  })
  await c.consumer.connect()
  await c.consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
  await c.consumer.run({
    eachMessage: async ({ partition, message }) => {
      c.seen.push(`${partition}/${message.offset}/${message.value.toString()}`)
    },
  })
  return c
}

function values(cs) {
  return cs.flatMap(c => c.seen.map(s => s.split('/')[2]))
}

function checkOnce(what, got, want) {
  const dup = got.filter((v, i) => got.indexOf(v) !== i)
  if (dup.length) throw new Error(`${what}: ${dup.length} record(s) read twice, e.g. ${dup[0]}`)
  eq(what, got.slice().sort(), want.slice().sort())
}

async function main() {
  const kafka = new Kafka({
    clientId: 'strata-kafkajs-group',
    brokers: [brokerAddr],
    logLevel: logLevel.ERROR,
    retry: { initialRetryTime: 100, retries: 8 },
  })
  const admin = kafka.admin()
  await admin.connect()
  eq('createTopics kjs-grp', await admin.createTopics({
    waitForLeaders: true, topics: [{ topic: TOPIC, numPartitions: PARTS }],
  }), true)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const produce = async (from, to) => {
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: range(from, to).map(i => ({ partition: i % PARTS, key: `k${i}`, value: `m${i}` })),
    })
  }
  const names = (from, to) => range(from, to).map(i => `m${i}`)
  await produce(0, 200)
  ok('200 records produced over 4 partitions of kjs-grp')

  // -- 1. commit, stop, produce more, restart
  let a = await startConsumer(kafka, 'kjs-resume', 'a')
  await waitFor('consumer a to read 200 records', () => a.seen.length >= 200)
  await sleep(300) // anything extra would show up as a duplicate
  checkOnce('consumer a: every record once', values([a]), names(0, 200))
  eq('consumer a owned every partition', a.assigned, range(0, PARTS))
  await a.consumer.disconnect()
  ok('consumer a read all 200 records once (4 partitions), committed and stopped')
  const committed = await admin.fetchOffsets({ groupId: 'kjs-resume', topics: [TOPIC] })
  const offs = committed[0].partitions.map(p => Number(p.offset)).reduce((x, y) => x + y, 0)
  eq('committed offsets of kjs-resume add up to the records read', offs, 200)
  ok('admin.fetchOffsets kjs-resume: committed offsets add up to 200')

  await produce(200, 300)
  ok('100 more records produced')
  const b = await startConsumer(kafka, 'kjs-resume', 'b')
  await waitFor('restarted consumer to read the 100 new records', () => b.seen.length >= 100)
  await sleep(1000) // a replay of old records would show up here
  checkOnce('restarted consumer: exactly the new records', values([b]), names(200, 300))
  await b.consumer.disconnect()
  ok('restarted consumer in kjs-resume read exactly the 100 new records: no loss, no duplicates')

  // -- 2. two consumers split the partitions
  const c1 = await startConsumer(kafka, 'kjs-split', 'c1')
  await waitFor('c1 to own all 4 partitions', () => c1.assigned.length === PARTS)
  const c2 = await startConsumer(kafka, 'kjs-split', 'c2')
  await waitFor('c1 and c2 to split the partitions 2/2', () =>
    c1.assigned.length === 2 && c2.assigned.length === 2 &&
    JSON.stringify([...c1.assigned, ...c2.assigned].sort()) === JSON.stringify(range(0, PARTS)))
  ok(`two consumers in kjs-split: c1 owns [${c1.assigned}], c2 owns [${c2.assigned}]`)
  await waitFor('all 300 records read between them', () =>
    new Set(values([c1, c2])).size >= 300)
  // records read by c1 before the rebalance may be read again by c2 when c1's last
  // batch was not yet committed (kafkajs commits after each batch): count distinct
  eq('kjs-split: every record read', [...new Set(values([c1, c2]))].sort(), names(0, 300).sort())
  const before = c1.seen.length + c2.seen.length
  const dups = before - 300
  // with the split in place, 100 new records: each consumer reads its own partitions
  const mark = [c1.seen.length, c2.seen.length]
  await produce(300, 400)
  await waitFor('the 100 new records read between them', () =>
    c1.seen.length - mark[0] + c2.seen.length - mark[1] >= 100)
  await sleep(500)
  const fresh = [c1.seen.slice(mark[0]), c2.seen.slice(mark[1])]
  fresh.forEach((seen, i) => {
    const c = [c1, c2][i]
    const parts = [...new Set(seen.map(s => Number(s.split('/')[0])))].sort()
    eq(`${c.name} read the new records of exactly its partitions`, parts, c.assigned)
  })
  checkOnce('kjs-split: the 100 new records, each once',
    fresh.flat().map(s => s.split('/')[2]), names(300, 400))
  ok(`kjs-split: all 300 records read between them (${dups} re-read across the rebalance, ` +
     `the uncommitted window); then 100 new ones, each read once by the owner of its partition ` +
     `(c1 ${fresh[0].length}, c2 ${fresh[1].length})`)
  await c2.consumer.disconnect()
  await waitFor('c1 to own all 4 again after c2 left', () => c1.assigned.length === PARTS)
  ok('c2 left: c1 owns all 4 partitions again')
  // admin.deleteGroups (DeleteGroups v1): refused while the group has a member
  let refused = null
  try {
    await admin.deleteGroups(['kjs-split'])
  } catch (e) {
    refused = e.groups || (e.originalError && e.originalError.groups) || e
  }
  eq('admin.deleteGroups of kjs-split with c1 in it',
    Array.isArray(refused) ? refused.map(g => [g.groupId, g.errorCode]) : String(refused),
    [['kjs-split', 68]])
  await c1.consumer.disconnect()
  const del = await admin.deleteGroups(['kjs-split'])
  eq('admin.deleteGroups kjs-split once empty', del.map(g => [g.groupId, g.errorCode]),
    [['kjs-split', 0]])
  const gone = await admin.fetchOffsets({ groupId: 'kjs-split', topics: [TOPIC] })
  eq('kjs-split offsets after deleteGroups', gone[0].partitions.map(p => p.offset),
    ['-1', '-1', '-1', '-1'])
  ok('admin.deleteGroups: kjs-split refused with NON_EMPTY_GROUP (68) while c1 was in it, ' +
     'deleted once empty; its offsets are gone')
  await producer.disconnect()
  await admin.disconnect()
}

main().then(() => process.exit(0), e => {
  console.log('FAIL: ' + (e && e.stack ? e.stack : e))
  process.exit(1)
})
