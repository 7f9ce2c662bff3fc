// Sends the calls given as JSON on stdin through @segment/analytics-node, unmodified,
// pointed at the host given as the first argument; prints what the library reported
// for each call (its messageId, or the error) as JSON lines, then flushes and exits.
//
//   node node_client.mjs http://127.0.0.1:8000 WRITE_KEY < calls.json
//
// calls.json: {"maxEventsInBatch": 15, "calls": [{"method": "track", "params": {...}}, ...]}
import { Analytics } from '@segment/analytics-node'
import { readFileSync } from 'node:fs'

const [host, writeKey] = process.argv.slice(2)
const spec = JSON.parse(readFileSync(0, 'utf8'))
const analytics = new Analytics({
  writeKey,
  host,
  maxEventsInBatch: spec.maxEventsInBatch ?? 15,
  flushInterval: 200,
  maxRetries: 3,
})
analytics.on('error', (err) => {
  console.log(JSON.stringify({ error: String(err.reason ?? err.code ?? err) }))
})
const sent = spec.calls.map(
  ({ method, params }) =>
    new Promise((resolve) => {
      analytics[method](params, (err, ctx) => {
        console.log(JSON.stringify(err ? { error: String(err) } : { messageId: ctx.event.messageId, type: ctx.event.type }))
        resolve()
      })
    })
)
await Promise.all(sent)
await analytics.closeAndFlush({ timeout: 10000 })
