-- wrk: POST /api/v1/payments-like requests, a payment of 1 cent on one of $CONTRACTS
-- (comma-separated ids) per request, round robin. The Idempotency-Key is
-- "$RUN-<thread>-<n>" (a fresh key per request), or, with KEY=same, "$RUN-replay" for
-- every request (the first answers, the rest are replays).

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local contracts = {}
local n = 0
local run, same, token

function init(args)
  for c in string.gmatch(os.getenv("CONTRACTS"), "[^,]+") do
    table.insert(contracts, c)
  end
  run = os.getenv("RUN")
  same = os.getenv("KEY") == "same"
  token = os.getenv("TOKEN")
end

function request()
  n = n + 1
  local contract = contracts[(n % #contracts) + 1]
  if same then
    contract = contracts[1]
  end
  local key = same and (run .. "-replay") or (run .. "-" .. tid .. "-" .. n)
  local body = '{"contract_id":"' .. contract
    .. '","amount":{"amount_cents":1,"currency":"EUR"},"payment_method":"pm_card_visa"}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
  }
  return wrk.format("POST", nil, headers, body)
end
