-- wrk script for bench/soak.sh: a mix of requests, optionally paced.
-- Environment: TOKENS (file, one JWT per line), CUSTOMERS (ids 1..N exist),
-- RATE (requests/s for the whole run, 0 or unset: as fast as possible),
-- THREADS (wrk's -t, to split RATE).
--   86%  GET /v1/customers/{random existing id}        200
--    4%  GET /v1/customers/{id that does not exist}    404
--    5%  GET /v1/cases?limit=5                          200
--    5%  POST /v1/cases, a fresh Idempotency-Key each  201
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
int clock_gettime(int clk, soak_timespec *tp);
]]
local ts = ffi.new("soak_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = "Bearer " .. line
end
local customers = tonumber(os.getenv("CUSTOMERS") or "100000")
local rate = tonumber(os.getenv("RATE") or "0")
local nthreads = tonumber(os.getenv("THREADS") or "2")
local n, serial = 0, 0


local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  id = id or 0
  math.randomseed(id * 7919 + os.time())
  c200, c201, c404, cother = 0, 0, 0, 0
end

request = function()
  n = n + 1
  local auth = tokens[(n % #tokens) + 1]
  local x = math.random(1, 100)
  if x <= 86 then
    return wrk.format("GET", "/v1/customers/" .. math.random(1, customers),
      { ["Authorization"] = auth })
  elseif x <= 90 then
    return wrk.format("GET", "/v1/customers/" .. (customers + math.random(1, 1e6)),
      { ["Authorization"] = auth })
  elseif x <= 95 then
    return wrk.format("GET", "/v1/cases?limit=5", { ["Authorization"] = auth })
  end
  serial = serial + 1
  local body = string.format('{"customer_id":%d,"subject":"soak %d-%d","priority":3}',
    math.random(1, customers), id, serial)
  return wrk.format("POST", "/v1/cases", {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("soak-%d-%d-%d", id, os.time(), serial),
  }, body)
end

-- Pacing: each request of this thread takes the next slot of its schedule.
if rate > 0 then
  local interval = 1000 * nthreads / rate
  local slot = nil
  delay = function()
    local t = now_ms()
    if slot == nil or slot < t - 1000 then slot = t end
    slot = slot + interval
    local d = slot - interval - t
    if d < 0 then return 0 end
    return d
  end
end

response = function(status, headers, body)
  if status == 200 then c200 = c200 + 1
  elseif status == 201 then c201 = c201 + 1
  elseif status == 404 then c404 = c404 + 1
  else cother = cother + 1 end
end

done = function(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c200"); b = b + t:get("c201"); c = c + t:get("c404"); d = d + t:get("cother")
  end
  io.write(string.format("statuses: 200=%d 201=%d 404=%d other=%d\n", a, b, c, d))
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
  io.write(string.format("socket errors: %d\n", summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
