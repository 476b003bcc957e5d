// The GitHub Action's post step (action.yml): stop the cluster main.js started (SIGTERM, a
// clean stop that removes its data; or `docker rm -f` for an image), print the end of its log,
// and remove its ready directory.  It runs at the end of the job, after every other step.
'use strict'

const { spawnSync } = require('child_process')
const fs = require('fs')
const { stopPid } = require('../../clients/js')

async function post () {
  const state = (k) => process.env[`STATE_${k}`] || ''
  if (state('container')) spawnSync('docker', ['rm', '-f', state('container')], { stdio: 'inherit' })
  if (state('pid')) await stopPid(Number(state('pid')))
  if (state('log') && fs.existsSync(state('log'))) {
    const tail = fs.readFileSync(state('log'), 'utf8').split('\n').slice(-20).join('\n')
    console.log('::group::minikora log (last lines)\n' + tail + '\n::endgroup::')
  }
  if (state('dir')) fs.rmSync(state('dir'), { recursive: true, force: true })
  console.log('minikora: stopped')
}

post().catch((e) => {
  console.log(`::warning::minikora: ${e.message}`)
})
