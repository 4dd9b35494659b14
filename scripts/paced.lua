-- wrk script for scripts/storm.sh: each connection waits PACE_MS (environment, default 1)
-- milliseconds between requests, so a latency probe does not itself load the machine.
local pace = tonumber(os.getenv("PACE_MS") or "1")
function delay() return pace end
