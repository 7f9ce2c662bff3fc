-- wrk script for bench/bench_e2e.py: POST every pre-signed webhook exactly once and
-- record when each one was sent.
--
-- wrk ... -s bench/e2e.lua URL -- <requests-file> <path> <threads> <out-prefix>
--
-- The file holds records "<Stripe-Signature>\n<body length>\n<body bytes>" (the format
-- of bench/intake.lua). Thread k of n sends records k, k+n, k+2n, ... once each; when a
-- thread has none left it writes "<record index> <send time>" lines and a final
-- "END <time>" line (wall-clock seconds, from clock_gettime through LuaJIT's ffi) to
-- "<out-prefix>.<k>" and stops. bench_e2e.py waits for every file, then sends wrk
-- SIGINT (wrk otherwise sleeps for its whole -d). Requests still in flight on the
-- thread's other connections when it stops have been written and are processed by the
-- server; their send times are in the file.

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_e2e_ts;
  int clock_gettime(int clk_id, bench_e2e_ts *tp);
]]
local ts = ffi.new("bench_e2e_ts")

local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME, comparable with Python's time.time()
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local requests_ = {}
local records = {}
local sent_at = {}
local count = 0
local index = 0
local out_name = nil
local finished = false

function init(args)
  local file_name, path, nthreads, prefix = args[1], args[2], tonumber(args[3]), args[4]
  out_name = prefix .. "." .. id
  local f = assert(io.open(file_name, "rb"))
  local record = 0
  while true do
    local signature = f:read("*l")
    if not signature then break end
    local length = tonumber(f:read("*l"))
    local body = f:read(length)
    if record % nthreads == id then
      count = count + 1
      records[count] = record
      requests_[count] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["Stripe-Signature"] = signature,
      }, body)
    end
    record = record + 1
  end
  f:close()
  assert(count > 0, "no requests for this thread")
end

local function finish()
  local done_at = now()
  local out = assert(io.open(out_name .. ".tmp", "w"))
  for i = 1, count do
    if sent_at[i] then
      out:write(string.format("%d %.6f\n", records[i], sent_at[i]))
    end
  end
  out:write(string.format("END %.6f\n", done_at))
  out:close()
  os.rename(out_name .. ".tmp", out_name)
end

local verified = false

function request()
  if id == 0 and not verified then
    -- wrk calls request() once on thread 0's state to check the script, before any
    -- connection exists; that request is never sent, so it must not use a record.
    verified = true
    return requests_[1]
  end
  index = index + 1
  if index > count then
    if not finished then
      finished = true
      finish()
    end
    wrk.thread:stop()
    -- Nothing to send: an empty request writes no bytes (a real one would be sent).
    return ""
  end
  sent_at[index] = now()
  return requests_[index]
end
