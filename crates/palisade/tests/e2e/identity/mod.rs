//! Identity and access, attacked from the outside: the real binary on a loopback port,
//! each scenario run on SQLite and on PostgreSQL with Redis.

mod accounts;
mod admin;
mod audit;
mod authz;
mod cookies;
mod email;
mod infra;
mod lockout;
mod rate_limits;
mod tokens;
mod two_factor;
