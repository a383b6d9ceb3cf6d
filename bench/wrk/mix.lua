-- 90% GET /show/{id}, 10% POST /user/add (wrk ... -- ROWS PREFIX).
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
require "common"

local rows = 10000
local prefix = "m"
local n = 0

function init(args)
  rows = tonumber(args[1] or rows)
  prefix = (args[2] or "m") .. tostring(id or 0)
  math.randomseed(os.time() + (id or 0) * 7919)
end

function request()
  if math.random() < 0.1 then
    n = n + 1
    local body = string.format('{"username":"%s%x","password":"b3nch-Pw9q"}', prefix, n)
    return wrk.format("POST", "/user/add", {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/show/" .. math.random(1, rows))
end
