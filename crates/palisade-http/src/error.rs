//! Every service error as the problem a client sees: one status and one stable `code`
//! per cause. A 5xx is logged here with its cause and answered with nothing of it.

use http::StatusCode;
use palisade_service::billing::BillingError;
use palisade_service::contracts::ContractError;
use palisade_service::dashboard::DashboardError;
use palisade_service::identity::IdentityError;
use palisade_service::infra::InfraError;
use palisade_service::payments::PaymentError;
use palisade_service::webhooks::WebhookError;
use palisade_store::StoreError;

use crate::problem::Problem;

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Problem {
        let p = |status, code, title: &'static str, detail: &'static str| {
            Problem::new(status, code, title).with_detail(detail)
        };
        match e {
            IdentityError::InvalidCredentials => p(
                StatusCode::UNAUTHORIZED,
                "auth.invalid_credentials",
                "Invalid email or password",
                "the email or the password is wrong, or the account cannot sign in now",
            ),
            IdentityError::Unauthenticated => unauthenticated(),
            IdentityError::RefreshReused => p(
                StatusCode::UNAUTHORIZED,
                "auth.refresh_reused",
                "The refresh token was already used; the session is revoked",
                "sign in again",
            ),
            IdentityError::RefreshInvalid => p(
                StatusCode::UNAUTHORIZED,
                "auth.refresh_invalid",
                "Invalid or expired refresh token",
                "sign in again",
            ),
            IdentityError::EmailTaken => p(
                StatusCode::CONFLICT,
                "auth.email_taken",
                "The email is already registered",
                "an account with this email exists; sign in or reset its password",
            ),
            IdentityError::Invalid(errors) => Problem::invalid_fields(errors),
            // A link's token names something that is not there (any more): 404.
            IdentityError::TokenInvalid => p(
                StatusCode::NOT_FOUND,
                "auth.token_invalid",
                "The link is invalid, used or expired",
                "ask for a new link",
            ),
            IdentityError::EmailUnverified => p(
                StatusCode::FORBIDDEN,
                "auth.email_unverified",
                "The e-mail address is not verified",
                "open the link sent to the address, or ask for a new one",
            ),
            IdentityError::MailCapped => p(
                StatusCode::TOO_MANY_REQUESTS,
                "mail.too_many",
                "Too many mails to this address",
                "at most 3 mails an hour go to one address; try again later",
            ),
            IdentityError::WrongPassword => p(
                StatusCode::FORBIDDEN,
                "auth.wrong_password",
                "The password is wrong",
                "the password given to confirm this is not the account's",
            ),
            IdentityError::WrongCode => p(
                StatusCode::FORBIDDEN,
                "auth.wrong_code",
                "The code is wrong or was already used",
                "give a current code from the authenticator app, or an unused backup code",
            ),
            IdentityError::TwoFactorOn => p(
                StatusCode::CONFLICT,
                "auth.2fa_enabled",
                "Two-factor authentication is already on",
                "turn it off first to enrol again",
            ),
            IdentityError::TwoFactorOff => p(
                StatusCode::CONFLICT,
                "auth.2fa_disabled",
                "Two-factor authentication is not on",
                "turn two-factor authentication on first",
            ),
            IdentityError::NoEnrolment => p(
                StatusCode::CONFLICT,
                "auth.2fa_not_started",
                "Start two-factor enrolment first",
                "POST /api/v1/me/2fa/setup comes before the confirmation",
            ),
            IdentityError::Forbidden => p(
                StatusCode::FORBIDDEN,
                "auth.forbidden",
                "You lack the permission for this",
                "your roles do not grant this action",
            ),
            IdentityError::StepUpRequired => p(
                StatusCode::FORBIDDEN,
                "auth.step_up_required",
                "Sign in again with your second factor to do this",
                "POST /api/v1/auth/step-up with a current code, then repeat the request",
            ),
            IdentityError::LastAdmin => p(
                StatusCode::CONFLICT,
                "users.last_admin",
                "The last active admin must stay one",
                "make another account an active admin first",
            ),
            IdentityError::BadCursor(e) => crate::extract::invalid_query(&format!("cursor: {e}")),
            IdentityError::NotFound => Problem::not_found(),
            IdentityError::Store(e) => Problem::from(e),
            IdentityError::Internal(e) => {
                tracing::error!(error = %e, "identity: internal error");
                Problem::internal()
            }
        }
    }
}

impl From<ContractError> for Problem {
    fn from(e: ContractError) -> Problem {
        let p = |status, code, title: &'static str, detail: String| {
            Problem::new(status, code, title).with_detail(detail)
        };
        match e {
            ContractError::NotFound => Problem::not_found(),
            ContractError::Invalid(errors) => Problem::invalid_fields(errors),
            ContractError::VersionMismatch { current } => p(
                StatusCode::PRECONDITION_FAILED,
                "contracts.version_mismatch",
                "The contract changed since the version you name",
                format!("it is at version {current}: read it again, then repeat the change"),
            ),
            ContractError::Contended => p(
                StatusCode::CONFLICT,
                "contracts.contended",
                "The contract is being changed by others",
                "repeat the change".to_owned(),
            ),
            ContractError::InvalidTransition { from, to } => p(
                StatusCode::CONFLICT,
                "contracts.invalid_transition",
                "The contract cannot move to that status",
                format!(
                    "{from} → {to} is not allowed: draft → active | cancelled, active → completed | cancelled"
                ),
            ),
            ContractError::Locked => p(
                StatusCode::CONFLICT,
                "contracts.locked",
                "The amount and currency are fixed after draft",
                "only a draft contract's amount or currency can change".to_owned(),
            ),
            ContractError::Undeletable => p(
                StatusCode::CONFLICT,
                "contracts.has_payments",
                "Only a draft or cancelled contract without payments can be deleted",
                "cancel it instead, or keep it".to_owned(),
            ),
            ContractError::Forbidden => IdentityError::Forbidden.into(),
            ContractError::BadCursor(e) => crate::extract::invalid_query(&format!("cursor: {e}")),
            ContractError::Store(e) => Problem::from(e),
        }
    }
}

impl From<PaymentError> for Problem {
    fn from(e: PaymentError) -> Problem {
        let p = |status, code, title: &'static str, detail: String| {
            Problem::new(status, code, title).with_detail(detail)
        };
        match e {
            PaymentError::NotFound => Problem::not_found(),
            PaymentError::Invalid(errors) => Problem::invalid_fields(errors),
            PaymentError::ContractNotActive => p(
                StatusCode::CONFLICT,
                "payments.contract_not_active",
                "The contract is not active",
                "payments are taken against an active contract only".to_owned(),
            ),
            PaymentError::CurrencyMismatch => p(
                StatusCode::UNPROCESSABLE_ENTITY,
                "payments.currency_mismatch",
                "The payment's currency is not the contract's",
                "pay in the contract's currency".to_owned(),
            ),
            PaymentError::ExceedsBalance { outstanding_cents } => p(
                StatusCode::CONFLICT,
                "payments.exceeds_balance",
                "The payment exceeds what is left to pay",
                format!("at most {outstanding_cents} can be paid on this contract now"),
            )
            .with_extension("outstanding_cents", outstanding_cents.into()),
            PaymentError::RefundExceedsPayment { refundable_cents } => p(
                StatusCode::CONFLICT,
                "payments.refund_exceeds_payment",
                "The refund exceeds what is left of the payment",
                format!("at most {refundable_cents} can be refunded of this payment"),
            )
            .with_extension("refundable_cents", refundable_cents.into()),
            PaymentError::Forbidden => IdentityError::Forbidden.into(),
            PaymentError::ClaimLost(_) => crate::idempotent::in_progress(),
            PaymentError::Provider(e) => {
                tracing::warn!(error = %e, "payment provider");
                p(
                    StatusCode::BAD_GATEWAY,
                    "payments.provider_unavailable",
                    "The payment provider could not be reached",
                    "retry with the same Idempotency-Key; nothing will be charged twice".to_owned(),
                )
            }
            PaymentError::BadCursor(e) => crate::extract::invalid_query(&format!("cursor: {e}")),
            PaymentError::Store(e) => Problem::from(e),
        }
    }
}

impl From<BillingError> for Problem {
    fn from(e: BillingError) -> Problem {
        let p = |status, code, title: &'static str, detail: String| {
            Problem::new(status, code, title).with_detail(detail)
        };
        let plan = |plan: Option<String>| plan.map_or(serde_json::Value::Null, Into::into);
        match e {
            BillingError::Disabled => p(
                StatusCode::NOT_FOUND,
                "billing.disabled",
                "Billing is not enabled",
                "this server runs with PALISADE_BILLING=off: every feature is on".to_owned(),
            ),
            BillingError::UnknownPlan => Problem::invalid_fields(vec![(
                "plan",
                "no such plan; GET /api/v1/billing/plans lists them".to_owned(),
            )]),
            BillingError::NotForSale => p(
                StatusCode::UNPROCESSABLE_ENTITY,
                "billing.plan_not_for_sale",
                "The plan cannot be bought",
                "the plan has no Stripe price".to_owned(),
            ),
            BillingError::AlreadySubscribed => p(
                StatusCode::CONFLICT,
                "billing.already_subscribed",
                "A subscription is running",
                "change or end it in the billing portal (POST /api/v1/billing/portal)".to_owned(),
            ),
            BillingError::NoSubscription => p(
                StatusCode::CONFLICT,
                "billing.no_subscription",
                "There is no subscription",
                "subscribe first (POST /api/v1/billing/checkout)".to_owned(),
            ),
            BillingError::FeatureUnavailable {
                feature,
                plan: with,
            } => p(
                StatusCode::PAYMENT_REQUIRED,
                "billing.feature_unavailable",
                "The plan does not include this feature",
                match &with {
                    Some(with) => format!("`{feature}` comes with the plan `{with}`"),
                    None => format!("no plan includes `{feature}`"),
                },
            )
            .with_extension("feature", feature.into())
            .with_extension("plan", plan(with)),
            BillingError::LimitReached {
                limit,
                max,
                plan: with,
            } => p(
                StatusCode::PAYMENT_REQUIRED,
                "billing.limit_reached",
                "The plan's limit is reached",
                match &with {
                    Some(with) => {
                        format!("`{limit}` is {max} on this plan; the plan `{with}` allows more")
                    }
                    None => format!("`{limit}` is {max}; no plan allows more"),
                },
            )
            .with_extension("limit", limit.into())
            .with_extension("plan", plan(with)),
            BillingError::NoUser => Problem::not_found(),
            BillingError::Contended => p(
                StatusCode::SERVICE_UNAVAILABLE,
                "billing.contended",
                "The subscription is being changed",
                "try again".to_owned(),
            ),
            BillingError::Unavailable(e) | BillingError::Refused(e) => {
                tracing::warn!(error = %e, "billing: Stripe");
                p(
                    StatusCode::BAD_GATEWAY,
                    "billing.provider_unavailable",
                    "Stripe could not complete the request",
                    "nothing was changed; try again".to_owned(),
                )
            }
            BillingError::Store(e) => Problem::from(e),
        }
    }
}

impl From<DashboardError> for Problem {
    fn from(e: DashboardError) -> Problem {
        match e {
            DashboardError::Forbidden => IdentityError::Forbidden.into(),
            DashboardError::Store(e) => Problem::from(e),
        }
    }
}

impl From<InfraError> for Problem {
    fn from(e: InfraError) -> Problem {
        tracing::error!(error = %e, "infrastructure statistics");
        Problem::internal()
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        tracing::error!(error = %e, "database error");
        Problem::internal()
    }
}

/// 401 `auth.unauthenticated`: the one answer for a missing, malformed, forged,
/// expired or revoked token.
pub fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "auth.unauthenticated",
        "Authentication required",
    )
    .with_detail("send a valid access token as Authorization: Bearer <token>")
}

impl From<WebhookError> for Problem {
    fn from(e: WebhookError) -> Problem {
        match e {
            WebhookError::NotFound => Problem::not_found(),
            WebhookError::Invalid(errors) => Problem::invalid_fields(errors),
            WebhookError::BadCursor(e) => crate::extract::invalid_query(&format!("cursor: {e}")),
            WebhookError::Store(e) => e.into(),
        }
    }
}
