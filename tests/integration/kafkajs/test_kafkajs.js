#!/usr/bin/env node
// kafkajs 2.2.4 against a running stratad: admin (createTopics, listTopics,
// fetchTopicMetadata, describeConfigs, deleteTopics) and an idempotent
// producer (idempotent, maxInFlightRequests 1, acks -1) sending keyed records
// with headers in several batches, uncompressed and GZIP. It starts no broker.
//
// usage: node test_kafkajs.js --broker HOST:PORT --out FILE [--proxy-port N]
//                              [--num-partitions N (the broker's num.partitions, default 1)]
//   (or STRATA_BROKER=HOST:PORT). kafkajs consumers need consumer groups,
//   which stratad does not implement yet: the read-back is done by the caller
//   (tests/integration/test_kafkajs.py) from FILE, a JSON list of every record
//   sent with the offset kafkajs got acknowledged.
//
// --proxy-port N: kafkajs talks to the broker through a TCP proxy on
// 127.0.0.1:N (the broker must advertise that port). For one Produce the proxy
// closes the connection instead of passing the response on, after the broker
// has appended the batch: kafkajs retries the same batch with the same
// sequence numbers, and the broker must answer the original offset without
// appending it again (the caller checks count == sent).
//
// Prints 'ok: ...' lines; exits 1 on the first failure.
'use strict'

const fs = require('fs')
const net = require('net')
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

function arg(name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}

const brokerAddr = arg('--broker') || process.env.STRATA_BROKER
const outFile = arg('--out')
const proxyPort = arg('--proxy-port') ? Number(arg('--proxy-port')) : 0
const numPartitions = Number(arg('--num-partitions') || 1) // the broker's num.partitions
if (!brokerAddr || !outFile) {
  console.error('usage: node test_kafkajs.js --broker HOST:PORT --out FILE [--proxy-port N]')
  process.exit(2)
}

function ok(msg) {
  console.log('ok: ' + msg)
}

function check(cond, msg) {
  if (!cond) throw new Error(msg)
}

function eq(what, got, want) {
  const g = JSON.stringify(got)
  const w = JSON.stringify(want)
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`)
}

// ---- the proxy ------------------------------------------------------------------

// Frames: [int32 size][payload]; a request payload starts with int16 api key,
// int16 version, int32 correlation id; a response payload with the correlation id.
function frames(state, chunk, onFrame) {
  state.buf = state.buf.length ? Buffer.concat([state.buf, chunk]) : chunk
  while (state.buf.length >= 4) {
    const n = state.buf.readInt32BE(0)
    if (state.buf.length < 4 + n) break
    const f = state.buf.subarray(0, 4 + n)
    state.buf = state.buf.subarray(4 + n)
    if (onFrame(f) === false) return
  }
}

function startProxy(listenPort, host, port) {
  const proxy = { dropNextProduceResponse: false, dropped: 0, produceRequests: 0, sockets: new Set() }
  const server = net.createServer(client => {
    const upstream = net.connect(port, host)
    proxy.sockets.add(client)
    proxy.sockets.add(upstream)
    const apiOf = new Map()
    const inState = { buf: Buffer.alloc(0) }
    const outState = { buf: Buffer.alloc(0) }
    const closeBoth = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('data', chunk => {
      frames(inState, chunk, f => {
        const key = f.readInt16BE(4)
        apiOf.set(f.readInt32BE(8), key)
        if (key === 0) proxy.produceRequests++
      })
      upstream.write(chunk)
    })
    upstream.on('data', chunk => {
      frames(outState, chunk, f => {
        const corr = f.readInt32BE(4)
        const key = apiOf.get(corr)
        apiOf.delete(corr)
        if (key === 0 && proxy.dropNextProduceResponse) {
          proxy.dropNextProduceResponse = false
          proxy.dropped++
          closeBoth()
          return false
        }
        client.write(f)
        return true
      })
    })
    client.on('error', closeBoth)
    upstream.on('error', closeBoth)
    client.on('close', () => { upstream.destroy(); proxy.sockets.delete(client) })
    upstream.on('close', () => { client.destroy(); proxy.sockets.delete(upstream) })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(listenPort, '127.0.0.1', () => {
      proxy.close = () => {
        for (const s of proxy.sockets) s.destroy()
        return new Promise(r => server.close(r))
      }
      resolve(proxy)
    })
  })
}

// ---- the records ------------------------------------------------------------------

const T0 = 1700000000000

// Deterministic records: key, value (text or binary, lengths 0..~600), two or
// three headers (one binary), an explicit timestamp.
function makeMessage(topic, i) {
  const value = i % 7 === 3
    ? Buffer.from(Array.from({ length: i % 251 }, (_, j) => (i * 31 + j * 7) & 0xff))
    : Buffer.from(`value-${topic}-${i}-` + 'x'.repeat(i % 577))
  const headers = {
    'h-index': String(i),
    'h-bin': Buffer.from([i & 0xff, (i >> 8) & 0xff, 0, 0xff]),
  }
  if (i % 5 === 0) headers['h-five'] = `every fifth ${i}`
  return { key: `key-${i}`, value, headers, timestamp: String(T0 + i) }
}

function describe(topic, partition, offset, m) {
  return {
    topic,
    partition,
    offset,
    timestamp: Number(m.timestamp),
    key: Buffer.from(m.key).toString('base64'),
    value: m.value.toString('base64'),
    headers: Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  }
}

// ---- main -------------------------------------------------------------------------

async function main() {
  const [bhost, bport] = brokerAddr.split(':')
  let proxy = null
  let bootstrap = brokerAddr
  if (proxyPort) {
    proxy = await startProxy(proxyPort, bhost, Number(bport))
    bootstrap = `127.0.0.1:${proxyPort}`
  }
  const kafka = new Kafka({
    clientId: 'strata-kafkajs-it',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { initialRetryTime: 100, retries: 5 },
  })

  // -- admin
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: 'kjs-plain', numPartitions: 1 },
      { topic: 'kjs-gzip', numPartitions: 1 },
      { topic: 'kjs-multi', numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '86400000' }] },
      { topic: 'kjs-doomed' },
      { topic: 'kjs-nonidem', numPartitions: 1 },
    ],
  })
  eq('createTopics of 5 new topics', created, true)
  eq('createTopics of an existing topic', await admin.createTopics({ topics: [{ topic: 'kjs-plain' }] }), false)
  // validateOnly: with waitForLeaders kafkajs would then wait for a topic that
  // (as on Kafka) was not created, and fail on UNKNOWN_TOPIC_OR_PARTITION
  eq('createTopics validateOnly', await admin.createTopics({
    validateOnly: true, waitForLeaders: false, topics: [{ topic: 'kjs-dry', numPartitions: 2 }],
  }), true)
  ok('admin.createTopics kjs-plain, kjs-gzip, kjs-multi (3 partitions, retention.ms), kjs-doomed, kjs-nonidem -> true; existing -> false; validateOnly')

  const names = (await admin.listTopics()).sort()
  eq('listTopics', names, ['kjs-doomed', 'kjs-gzip', 'kjs-multi', 'kjs-nonidem', 'kjs-plain'])
  ok('admin.listTopics -> ' + names.join(', ') + ' (validateOnly created nothing)')

  const md = await admin.fetchTopicMetadata({ topics: ['kjs-plain', 'kjs-multi', 'kjs-doomed'] })
  const parts = Object.fromEntries(md.topics.map(t => [t.name, t.partitions.length]).sort())
  eq('fetchTopicMetadata partition counts', parts, { 'kjs-doomed': numPartitions, 'kjs-multi': 3, 'kjs-plain': 1 })
  for (const t of md.topics) {
    for (const p of t.partitions) {
      check(p.partitionErrorCode === 0 && p.leader === 0 && p.replicas.join() === '0' && p.isr.join() === '0',
        `fetchTopicMetadata ${t.name}/${p.partitionId}: ${JSON.stringify(p)}`)
    }
  }
  ok(`admin.fetchTopicMetadata -> kjs-plain 1, kjs-multi 3, kjs-doomed ${numPartitions} (num.partitions) partitions, leader 0, isr [0]`)

  const cfg = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: 'kjs-multi', configNames: ['retention.ms', 'cleanup.policy'] }],
  })
  const entries = Object.fromEntries(cfg.resources[0].configEntries.map(e => [e.configName, e.configValue]))
  eq('describeConfigs kjs-multi', entries, { 'cleanup.policy': 'delete', 'retention.ms': '86400000' })
  ok('admin.describeConfigs kjs-multi -> retention.ms=86400000, cleanup.policy=delete')

  await admin.deleteTopics({ topics: ['kjs-doomed'] })
  check(!(await admin.listTopics()).includes('kjs-doomed'), 'kjs-doomed still listed after deleteTopics')
  ok('admin.deleteTopics kjs-doomed')

  // -- idempotent producer
  let producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  const sent = []
  const next = {} // "topic/partition" -> next expected offset
  let n = 0
  async function send(topic, partitionOf, count, compression, acks = -1) {
    const messages = []
    for (let i = 0; i < count; i++) {
      const m = makeMessage(topic, n + i)
      m.partition = partitionOf(n + i)
      messages.push(m)
    }
    n += count
    const meta = await producer.send({ topic, messages, acks, compression, timeout: 30000 })
    const base = Object.fromEntries(meta.map(r => [r.partition, r]))
    const idx = {}
    for (const m of messages) {
      const r = base[m.partition]
      check(r && r.errorCode === 0, `${topic}/${m.partition}: no acknowledgement ${JSON.stringify(meta)}`)
      const tp = `${topic}/${m.partition}`
      const off = Number(r.baseOffset) + (idx[m.partition] = (idx[m.partition] || 0) + 1) - 1
      eq(`${tp} offset of record ${sent.length}`, off, next[tp] || 0)
      next[tp] = off + 1
      sent.push(describe(topic, m.partition, off, m))
    }
    return meta
  }

  const batches = [
    ['kjs-plain', 400], ['kjs-plain', 700], ['kjs-plain', 1000], ['kjs-plain', 300],
  ]
  for (const [t, c] of batches) await send(t, () => 0, c, CompressionTypes.None)
  ok(`idempotent producer: ${batches.length} batches, ${n} records with keys and 2-3 headers to kjs-plain, offsets 0..${next['kjs-plain/0'] - 1} in order`)

  const before = n
  for (const c of [500, 900, 1200]) await send('kjs-gzip', () => 0, c, CompressionTypes.GZIP)
  ok(`idempotent producer, GZIP: 3 batches, ${n - before} records to kjs-gzip, offsets 0..${next['kjs-gzip/0'] - 1} in order`)

  const before2 = n
  for (const c of [600, 600]) await send('kjs-multi', i => i % 3, c, CompressionTypes.GZIP)
  ok(`idempotent producer, GZIP: 2 requests, ${n - before2} records over kjs-multi partitions 0-2 (${[0, 1, 2].map(p => next['kjs-multi/' + p]).join('/')})`)

  if (proxy) {
    const reqs = proxy.produceRequests
    proxy.dropNextProduceResponse = true
    await send('kjs-plain', () => 0, 250, CompressionTypes.None)
    await send('kjs-gzip', () => 0, 250, CompressionTypes.GZIP)
    eq('responses dropped by the proxy', proxy.dropped, 1)
    check(proxy.produceRequests - reqs >= 3,
      `the dropped Produce was not retried (${proxy.produceRequests - reqs} Produce requests for 2 sends)`)
    ok(`a Produce response lost (connection closed after the append): kafkajs retried the batch ` +
       `(${proxy.produceRequests - reqs} Produce requests for 2 sends) and got the original offsets`)
  } else {
    ok('no --proxy-port: lost-response retry not exercised')
  }
  await producer.disconnect()

  // a plain (non-idempotent) producer: kafkajs writes producerId -1 with
  // baseSequence 0 (not -1) on every batch (reference.md 2.3)
  producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const before3 = n
  for (const c of [150, 150]) await send('kjs-nonidem', () => 0, c, CompressionTypes.None, 1)
  await producer.disconnect()
  ok(`plain producer, acks 1: 2 batches, ${n - before3} records to kjs-nonidem, offsets 0..${next['kjs-nonidem/0'] - 1}`)

  const high = await admin.fetchTopicOffsets('kjs-plain')
  eq('fetchTopicOffsets kjs-plain high', high.map(p => p.high), [String(next['kjs-plain/0'])])
  ok(`admin.fetchTopicOffsets kjs-plain -> high ${high[0].high} = records sent`)
  await admin.disconnect()

  fs.writeFileSync(outFile, JSON.stringify({ records: sent, next }))
  ok(`${sent.length} records sent; manifest in ${outFile}`)
  if (proxy) await proxy.close()
}

main().then(() => process.exit(0), e => {
  console.log('FAIL: ' + (e && e.stack ? e.stack : e))
  process.exit(1)
})
