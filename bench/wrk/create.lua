-- POST /user/add with unique usernames: PREFIX (one letter per run) .. thread .. counter.
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
require "common"

local prefix = "x"
local n = 0

function init(args)
  prefix = (args[1] or "x") .. tostring(id or 0)
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format('{"username":"%s%x","password":"b3nch-Pw9q"}', prefix, n)
  return wrk.format("POST", "/user/add", nil, body)
end
