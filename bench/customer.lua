-- wrk script for bench/http.sh: GET /v1/customers/{random id} with one of
-- several valid tokens. TOKENS (a file, one token per line) and CUSTOMERS
-- come from the environment.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = "Bearer " .. line
end
local customers = tonumber(os.getenv("CUSTOMERS") or "100000")
local n = 0

request = function()
  n = n + 1
  local headers = { ["Authorization"] = tokens[(n % #tokens) + 1] }
  return wrk.format("GET", "/v1/customers/" .. math.random(1, customers), headers)
end

-- Count non-2xx answers so a broken run cannot pass as a fast one.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non-200: %d\n", summary.errors.status))
end
