// Shared setup for the kafkajs helper scripts: codec registration (snappy via kafkajs-snappy,
// lz4 via pure-JS lz4js, zstd via zstd-codec, all without native builds) and client creation.
'use strict'
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')

let zstdSimple = null
function zstdReady () {
  if (zstdSimple) return Promise.resolve(zstdSimple)
  const { ZstdCodec } = require('zstd-codec')
  return new Promise(resolve => ZstdCodec.run(z => { zstdSimple = new z.Simple(); resolve(zstdSimple) }))
}

async function registerCodecs () {
  const SnappyCodec = require('kafkajs-snappy')
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
  const lz4 = require('lz4js')
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    async compress (encoder) { return Buffer.from(lz4.compress(encoder.buffer)) },
    async decompress (buffer) { return Buffer.from(lz4.decompress(buffer)) }
  })
  const z = await zstdReady()
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    async compress (encoder) { return Buffer.from(z.compress(encoder.buffer, 3)) },
    async decompress (buffer) { return Buffer.from(z.decompress(buffer)) }
  })
}

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

function makeKafka (bootstrap, clientId) {
  return new Kafka({
    clientId: clientId || 'minikora-tests',
    brokers: bootstrap.split(','),
    logLevel: logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 }
  })
}

// Errors as plain JSON: kafkajs protocol errors carry type/code; aggregate errors carry .errors.
function errorJson (e) {
  if (e == null) return null
  const o = { name: e.name, message: e.message, type: e.type, code: e.code, retriable: e.retriable }
  if (e.topic) o.topic = e.topic
  if (Array.isArray(e.errors)) o.errors = e.errors.map(errorJson)
  if (e.cause && e.cause !== e) o.cause = errorJson(e.cause)
  if (e.originalError && e.originalError !== e) o.originalError = errorJson(e.originalError)
  return o
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

module.exports = { registerCodecs, CODECS, makeKafka, errorJson, emit }
