-- wrk traffic for the routing benchmark: Wt-style requests, new sessions and sticky ones.
--
--   wrk -t C -c C -s traffic.lua URL -- MODE TABLE NEW_PERCENT SESSION_REQUESTS SEED
--
-- One connection per wrk thread (-t equal to -c), so each thread's Lua state is one client
-- connection and every response is matched to the request it answers.
-- TABLE: lines "<address:port> <prefix>", one per Wt instance (what the responder reports
-- in x-served-by, and the instance's session id prefix).
-- MODE "mix": every request picks independently: NEW_PERCENT % new sessions (no wtd), the rest
--   sticky to a random instance (?wtd=<prefix><16 random [A-Za-z0-9]>). Spreads each client
--   connection over the whole fleet.
-- MODE "clients": each connection is one browser: it opens a session (request without wtd),
--   learns from the response which instance holds it, sends SESSION_REQUESTS - 1 requests of
--   that session, then opens the next one.
-- Every sticky response is checked: it must come from the session's instance.
-- done() prints one line "RESULT {json}".

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("thread_id", counter)
   table.insert(threads, thread)
end

local function suffix()
   local chars = {}
   for i = 1, 16 do
      local k = math.random(1, #alphabet)
      chars[i] = alphabet:sub(k, k)
   end
   return table.concat(chars)
end

function init(args)
   mode = args[1]
   new_percent = tonumber(args[3])
   session_requests = tonumber(args[4])
   math.randomseed(tonumber(args[5]) * 1000 + thread_id)
   prefixes, instance_of_prefix, prefix_of_instance = {}, {}, {}
   for line in io.lines(args[2]) do
      local instance, prefix = line:match("^(%S+)%s+(%S+)$")
      if instance then
         table.insert(prefixes, prefix)
         prefix_of_instance[instance] = prefix
      end
   end
   new_request = wrk.format("GET", "/")
   sticky, misrouted, unknown, new_sessions, no_header = 0, 0, 0, 0, 0
   expected = nil       -- prefix the next response must come from; nil for a new session
   if mode == "mix" then
      -- Precomputed, so building requests costs the load generator next to nothing.
      pool, pool_expected = {}, {}
      for i = 1, 4096 do
         if math.random(1, 100) <= new_percent then
            pool[i], pool_expected[i] = new_request, false
         else
            local prefix = prefixes[math.random(1, #prefixes)]
            pool[i] = wrk.format("GET", "/?wtd=" .. prefix .. suffix())
            pool_expected[i] = prefix
         end
      end
      position = 0
   else
      session_request, session_prefix, left = nil, nil, 0
   end
end

function request()
   if mode == "mix" then
      position = position % #pool + 1
      expected = pool_expected[position]
      return pool[position]
   end
   if left <= 0 then
      expected = false
      return new_request
   end
   left = left - 1
   expected = session_prefix
   return session_request
end

function response(status, headers, body)
   local instance = headers["x-served-by"]
   if not instance then
      no_header = no_header + 1
      return
   end
   local prefix = prefix_of_instance[instance]
   if not prefix then
      unknown = unknown + 1
      return
   end
   if expected then
      sticky = sticky + 1
      if prefix ~= expected then
         misrouted = misrouted + 1
      end
   else
      new_sessions = new_sessions + 1
      if mode == "clients" then
         session_prefix = prefix
         session_request = wrk.format("GET", "/?wtd=" .. prefix .. suffix())
         left = session_requests - 1
      end
   end
end

function done(summary, latency, requests)
   local totals = {sticky = 0, misrouted = 0, unknown = 0, new_sessions = 0, no_header = 0}
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
      '"sticky": %d, "misrouted": %d, "unknown": %d, "new_sessions": %d, "no_header": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      totals.sticky, totals.misrouted, totals.unknown, totals.new_sessions, totals.no_header))
end
