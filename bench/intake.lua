-- wrk script for bench/bench_intake.py: POST pre-signed webhooks read from a file.
--
-- wrk ... -s bench/intake.lua URL -- <requests-file> <path> <cycle|once> <threads>
--
-- The file holds records "<Stripe-Signature>\n<body length>\n<body bytes>". Thread k of
-- n sends records k, k+n, k+2n, ... In "once" mode a thread that runs out of records
-- stops and reports it (every request must carry a distinct event id); in "cycle" mode
-- it starts again from its first record.

local next_id = 0
local threads = {}

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests_ = {}
local count = 0
local index = 0
local once = false
exhausted = 0

function init(args)
  local file_name, path, mode = args[1], args[2], args[3]
  local nthreads = tonumber(args[4])
  once = mode == "once"
  local f = assert(io.open(file_name, "rb"))
  local record = 0
  while true do
    local signature = f:read("*l")
    if not signature then break end
    local length = tonumber(f:read("*l"))
    local body = f:read(length)
    if record % nthreads == id then
      count = count + 1
      requests_[count] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json; charset=utf-8",
        ["Stripe-Signature"] = signature,
      }, body)
    end
    record = record + 1
  end
  f:close()
  assert(count > 0, "no requests for this thread")
end

function request()
  index = index + 1
  if index > count then
    index = 1
    if once then
      exhausted = exhausted + 1
      wrk.thread:stop()
    end
  end
  return requests_[index]
end

function done(summary, latency, requests)
  local ran_out = 0
  for _, thread in ipairs(threads) do
    ran_out = ran_out + (tonumber(thread:get("exhausted")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, ran_out))
end
