// The built-in scenarios of `palisade loadtest`, for k6 users: the same five
// scenarios, thresholds and profiles (PROFILE=smoke|load|stress|spike, SCALE=F).
//
//   BASE_URL=http://127.0.0.1:3000 PROFILE=smoke k6 run ops/k6/multi_scenarios.js
//
// The target must exempt the load generator from its rate limits and grant exports
// to new accounts (PALISADE_RATE_LIMIT_ALLOW, PALISADE_MAX_CONNECTIONS_PER_CLIENT,
// PALISADE_BILLING_PLANS; see README).
// One difference: k6's HTTP client cannot hold a server-sent event stream, so the
// notifications scenario polls GET /api/v1/notifications for the payment's notice
// instead of reading /api/v1/notifications/stream.

import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { uuidv4 } from 'https://jslib.k6.io/k6-utils/1.4.0/index.js';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
const PROFILE = __ENV.PROFILE || 'load';
const PASSWORD = __ENV.PASSWORD || 'a long load test passphrase 4711';

const PROFILES = {
  smoke: { load: 0.05, time: 0.1, only: null, successful: 'count>10' },
  load: { load: 1, time: 1, only: null, successful: 'count>100' },
  stress: { load: 2, time: 1, only: ['payments', 'dashboard', 'exports', 'notifications'], successful: 'count>200' },
  spike: { load: 1, time: 1, only: ['spike'], successful: 'count>100' },
};
const profile = PROFILES[PROFILE];
if (!profile) {
  throw new Error(`PROFILE must be one of ${Object.keys(PROFILES).join(', ')}`);
}
const SCALE = Number(__ENV.SCALE || 1);
const LOAD = profile.load * SCALE;
const TIME = profile.time * SCALE;

const count = (n) => (n === 0 ? 0 : Math.max(1, Math.round(n * LOAD)));
const secs = (s) => `${Math.max(0.001, s * TIME).toFixed(3)}s`;

const paymentFailures = new Rate('payment_failures');
const successfulPayments = new Counter('successful_payments');
const failedPayments = new Counter('failed_payments');
const paymentDuration = new Trend('payment_duration', true);
const dashboardDuration = new Trend('dashboard_duration', true);
const exportDuration = new Trend('export_duration', true);
const notificationDelivery = new Trend('notification_delivery', true);

const ALL = {
  payments: {
    executor: 'ramping-vus',
    exec: 'payments',
    startVUs: count(20),
    stages: [
      { duration: secs(60), target: count(50) },
      { duration: secs(120), target: count(200) },
      { duration: secs(90), target: count(200) },
      { duration: secs(30), target: 0 },
    ],
    startTime: secs(0),
    tags: { kind: 'write' },
  },
  dashboard: {
    executor: 'constant-vus',
    exec: 'dashboard',
    vus: count(50),
    duration: secs(180),
    startTime: secs(0),
    tags: { kind: 'read' },
  },
  exports: {
    executor: 'shared-iterations',
    exec: 'exports',
    vus: Math.min(count(30), count(300)),
    iterations: count(300),
    maxDuration: secs(300),
    startTime: secs(0),
    tags: { kind: 'export' },
  },
  notifications: {
    executor: 'per-vu-iterations',
    exec: 'notifications',
    vus: count(20),
    iterations: 10,
    maxDuration: secs(300),
    startTime: secs(0),
    tags: { kind: 'stream' },
  },
  spike: {
    executor: 'ramping-vus',
    exec: 'spike',
    startVUs: 0,
    stages: [
      { duration: secs(10), target: count(500) },
      { duration: secs(15), target: count(500) },
      { duration: secs(5), target: 0 },
    ],
    startTime: secs(310),
    gracefulStop: '10s',
    tags: { kind: 'spike' },
  },
};

const scenarios = {};
for (const [name, s] of Object.entries(ALL)) {
  if (!profile.only || profile.only.includes(name)) {
    scenarios[name] = s;
  }
}
// As in palisade loadtest: start times count from the earliest scenario chosen.
if (profile.only && profile.only.length === 1) {
  scenarios[profile.only[0]].startTime = '0s';
}

export const options = {
  scenarios,
  thresholds: {
    http_req_failed: ['rate<0.03'],
    http_req_duration: ['p(95)<1000'],
    'http_req_duration{scenario:payments}': ['p(95)<900'],
    'http_req_duration{scenario:dashboard}': ['p(95)<700'],
    'http_req_duration{scenario:exports}': ['p(95)<2000'],
    payment_failures: ['rate<0.05'],
    successful_payments: [profile.successful],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

const json = (token) => ({
  headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
});

// Accounts made through the API, each with an active contract; VU n acts as account
// n mod the number of accounts. k6 numbers VUs across the whole test, not per
// scenario as palisade loadtest does, so more than two export VUs may share an
// account and meet the cap of two running exports per user (429).
export function setup() {
  const run = uuidv4().slice(0, 12);
  const accounts = [];
  for (let i = 0; i < count(16); i++) {
    const email = `loadtest-${run}-${i}@example.com`;
    const reg = http.post(`${BASE_URL}/api/v1/auth/register`,
      JSON.stringify({ email, password: PASSWORD, name: `Load test ${i}` }), json());
    if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${reg.body}`);
    const login = http.post(`${BASE_URL}/api/v1/auth/login`, JSON.stringify({ email, password: PASSWORD }), json());
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);
    const token = login.json('access_token');
    const contract = http.post(`${BASE_URL}/api/v1/contracts`, JSON.stringify({
      title: 'Load test', counterparty: 'Acme', amount: { amount_cents: 1000000000000, currency: 'EUR' },
    }), json(token));
    if (contract.status !== 201) throw new Error(`contract answered ${contract.status}`);
    const id = contract.json('id');
    const active = http.patch(`${BASE_URL}/api/v1/contracts/${id}`, JSON.stringify({ status: 'active' }), json(token));
    if (active.status !== 200) throw new Error(`activation answered ${active.status}`);
    accounts.push({ token, contract: id });
  }
  return { accounts };
}

const mine = (data) => data.accounts[(__VU - 1) % data.accounts.length];

function pay(account, cents, description) {
  const params = json(account.token);
  params.headers['Idempotency-Key'] = uuidv4();
  params.responseCallback = http.expectedStatuses(201);
  return http.post(`${BASE_URL}/api/v1/payments`, JSON.stringify({
    contract_id: account.contract,
    amount: { amount_cents: cents, currency: 'EUR' },
    payment_method: 'pm_card_visa',
    ...(description ? { description } : {}),
  }), params);
}

export function payments(data) {
  const res = pay(mine(data), 1250, `load test vu ${__VU} iteration ${__ITER}`);
  const ok = check(res, {
    'payment created': (r) => r.status === 201,
    'payment succeeded': (r) => r.status === 201 && r.json('status') === 'succeeded',
  });
  paymentFailures.add(!ok);
  if (ok) successfulPayments.add(1); else failedPayments.add(1);
  paymentDuration.add(res.timings.duration);
  sleep(0.5 + Math.random());
}

export function dashboard(data) {
  const res = http.get(`${BASE_URL}/api/v1/dashboard`, json(mine(data).token));
  check(res, { 'dashboard read': (r) => r.status === 200 });
  dashboardDuration.add(res.timings.duration);
  sleep(1);
}

export function exports(data) {
  const res = http.get(`${BASE_URL}/api/v1/exports/payments?format=ndjson`, json(mine(data).token));
  check(res, { 'export streamed': (r) => r.status === 200 });
  exportDuration.add(res.timings.duration);
  sleep(2);
}

export function notifications(data) {
  const account = mine(data);
  const started = Date.now();
  const res = pay(account, 500);
  check(res, { 'payment to notify created': (r) => r.status === 201 });
  if (res.status !== 201) return;
  const id = res.json('id');
  let seen = false;
  while (!seen && Date.now() - started < 10000) {
    const list = http.get(`${BASE_URL}/api/v1/notifications?limit=20`, json(account.token));
    const items = list.status === 200 ? list.json('items') || [] : [];
    seen = items.some((n) => n.data && n.data.subject_id === id);
    if (!seen) sleep(0.1);
  }
  check(seen, { 'notification stream: event received': (s) => s });
  if (seen) notificationDelivery.add(Date.now() - started);
  sleep(1);
}

export function spike(data) {
  const res = http.get(`${BASE_URL}/api/v1/contracts?limit=20`, json(mine(data).token));
  check(res, { 'contracts listed': (r) => r.status === 200 });
  sleep(1);
}
