// The GitHub Action's main step (action.yml at the repository root): find, build or pull
// minikora, start it for the rest of the job, and export where it is.
//
// Inputs (INPUT_* as the runner passes them): brokers, azs, args (extra `serve` flags), image
// (run this Docker image instead of a binary), build ("true": build from this checkout of the
// action when no binary is found).  Exports KAFKA_BOOTSTRAP, MINIKORA_ADMIN and
// MINIKORA_ADMIN_TOKEN to the job ($GITHUB_ENV; the token is masked in logs), sets the outputs
// bootstrap and admin, and saves what the post step (post.js) needs to stop it ($GITHUB_STATE).
// Uses no npm packages: the runner's files are written directly.
'use strict'

const { spawnSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { Minikora, findBinary } = require('../../clients/js')

const ROOT = path.resolve(__dirname, '..', '..')

function input (name, dflt = '') {
  const v = process.env[`INPUT_${name.toUpperCase()}`]
  return (v === undefined || v === '' ? dflt : v).trim()
}

function append (fileVar, lines) {
  const f = process.env[fileVar]
  if (!f) throw new Error(`${fileVar} is not set: not running as a GitHub Action step?`)
  fs.appendFileSync(f, lines.map((l) => l + '\n').join(''))
}

function splitArgs (s) {
  // Whitespace-separated flags; single or double quotes keep a value with spaces together.
  const out = []
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g
  let m
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3])
  return out
}

async function main () {
  const image = input('image')
  const options = {
    image: image || null,
    args: splitArgs(input('args')),
    detached: true,
    logFile: path.join(process.env.RUNNER_TEMP || os.tmpdir(), `minikora-${process.pid}.log`)
  }
  if (input('brokers')) options.brokers = Number(input('brokers'))
  if (input('azs')) options.azs = Number(input('azs'))
  if (!image) {
    try {
      options.binary = findBinary(undefined, { build: false })
    } catch (e) {
      if (input('build', 'true') !== 'true') throw e
      console.log('minikora: no binary found; building it from', ROOT)
      const inst = spawnSync('bash', [path.join(ROOT, 'ci', 'install.sh'), 'build'], { stdio: 'inherit' })
      if (inst.status !== 0) throw new Error('ci/install.sh build failed')
      process.env.MINIKORA_SRC = ROOT
      options.binary = findBinary()
    }
    console.log('minikora: using', options.binary)
  }
  const mk = await Minikora.start(options)
  if (mk.adminToken) console.log(`::add-mask::${mk.adminToken}`)
  append('GITHUB_STATE', [`pid=${mk.pid || ''}`, `container=${mk.container || ''}`, `dir=${mk.tmp || ''}`,
    `log=${mk.logFile || ''}`])
  append('GITHUB_ENV', [`KAFKA_BOOTSTRAP=${mk.bootstrap}`, `MINIKORA_ADMIN=${mk.admin}`,
    `MINIKORA_ADMIN_TOKEN=${mk.adminToken}`])
  if (process.env.GITHUB_OUTPUT) append('GITHUB_OUTPUT', [`bootstrap=${mk.bootstrap}`, `admin=${mk.admin}`])
  console.log(`minikora: ready; KAFKA_BOOTSTRAP=${mk.bootstrap} MINIKORA_ADMIN=${mk.admin}`)
}

main().catch((e) => {
  console.log(`::error::minikora: ${e.message}`)
  process.exit(1)
})
