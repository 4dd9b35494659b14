-- wrk script for scripts/storm.sh: every request carries a fresh random key
-- (`pk_live_` + 64 hex digits, so its prefix is almost surely unknown); each thread
-- stops after `-- <requests per thread>` answers, and the answers are counted by status.
-- STORM_DELAY_MS (environment) makes each connection wait that long between requests;
-- STORM_DONE_FILE (environment) is written when the thread has its answers (wrk itself
-- runs until its -d duration or SIGINT, which scripts/storm.sh sends then).
local hex = {}
for i = 0, 15 do hex[i + 1] = string.format("%x", i) end
local digits = {}
local limit = 1000000
seen, counts = 0, {}
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1] or "1000000")
  math.randomseed(os.time() + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
end

local delay_ms = tonumber(os.getenv("STORM_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay() return delay_ms end
end

function request()
  for i = 1, 64 do digits[i] = hex[math.random(16)] end
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer pk_live_" .. table.concat(digits) })
end

function response(status, headers, body)
  seen = seen + 1
  counts[status] = (counts[status] or 0) + 1
  if seen == limit then
    local done_file = os.getenv("STORM_DONE_FILE")
    if done_file then
      local f = io.open(done_file, "w")
      if f then f:write(seen, "\n"); f:close() end
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local all, answered = {}, 0
  for _, thread in ipairs(threads) do
    answered = answered + (thread:get("seen") or 0)
    for status, n in pairs(thread:get("counts") or {}) do
      all[status] = (all[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(all) do table.insert(parts, status .. "x" .. n) end
  table.sort(parts)
  local secs = summary.duration / 1e6
  io.write(string.format("storm: %d answers counted in %.1f s (%.0f/s); statuses: %s\n",
    answered, secs, answered / secs, table.concat(parts, " ")))
end
