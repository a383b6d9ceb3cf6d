-- POST /auth/login (the OAuth2 form) as users u1..uROWS, drawn at random (wrk ... -- ROWS).
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
require "common"

local rows = 10000

function init(args)
  rows = tonumber(args[1] or rows)
  math.randomseed(os.time() + (id or 0) * 7919)
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local body = string.format("username=u%d&password=b3nch-Pw9q", math.random(1, rows))
  return wrk.format("POST", "/auth/login", nil, body)
end
