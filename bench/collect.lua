-- wrk script for bench/bench_collect.py: POST Segment calls with distinct messageIds.
--
-- wrk ... -s bench/collect.lua URL -- <path> <calls per request> <Authorization header>
--
-- <path> /v1/batch sends {"batch": [...]} of <calls per request> calls; any other path
-- (/v1/track) sends one call. Every call has a new messageId (thread id + counter), so
-- nothing is dropped as a duplicate: each one costs a dedup key and an outbox item.

local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local path, per, headers
local counter = 0
local call = '{"type":"track","userId":"user-%d","event":"Product Viewed",' ..
  '"messageId":"%s-%d","timestamp":"2026-11-30T12:00:00.000Z",' ..
  '"properties":{"product_id":"sku_123","name":"Runner 2","price":19.99,' ..
  '"currency":"USD","category":"shoes"},' ..
  '"context":{"library":{"name":"analytics-node","version":"2.1.0"}}}'

function init(args)
  path = args[1]
  per = tonumber(args[2])
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = args[3] }
end

function request()
  counter = counter + 1
  local prefix = id .. "-" .. counter
  if path ~= "/v1/batch" then
    return wrk.format("POST", path, headers, string.format(call, counter, prefix, 0))
  end
  local calls = {}
  for i = 1, per do calls[i] = string.format(call, counter, prefix, i) end
  return wrk.format("POST", path, headers, '{"batch":[' .. table.concat(calls, ",") .. ']}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
