#!/usr/bin/env python3
"""localstripe (a Stripe-compatible test server, PyPI `localstripe`) on 127.0.0.1 only,
with its state in a file of the caller's choosing.

localstripe itself listens on every interface and keeps its state in
/tmp/localstripe.pickle, shared by every instance on the machine; the tests start it
through this launcher instead, one private server per test.

localstripe has no Checkout and no billing portal. For those calls alone this
launcher adds minimal endpoints answering in the shape Stripe documents
(https://docs.stripe.com/api/checkout/sessions/object,
https://docs.stripe.com/api/customer_portal/sessions/object), inside localstripe's
own server so they see its customers, plans and webhooks:

  POST /v1/checkout/sessions           a session (mode=subscription) with its `url`
  POST /v1/billing_portal/sessions     a portal session with its `url`
  POST /_config/checkout/{id}/pay      what the customer does on the Checkout page:
                                       a card attached, the subscription created (its
                                       own events follow), `checkout.session.completed`
                                       sent

Usage: run-localstripe.py --port PORT --state FILE
"""

import argparse
import pickle
import socket

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (Customer, Event, PaymentMethod, Plan,
                                   StripeObject, Subscription)
from localstripe.webhooks import schedule_webhook


class CheckoutSession(StripeObject):
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, base, mode=None, customer=None, line_items=None,
                 success_url=None, cancel_url=None, client_reference_id=None,
                 metadata=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        try:
            assert mode == "subscription"
            assert type(customer) is str and customer.startswith("cus_")
            assert type(line_items) is list and len(line_items) == 1
            assert type(success_url) is str and type(cancel_url) is str
        except AssertionError:
            raise UserError(400, "Bad request")
        Customer._api_retrieve(customer)
        price = line_items[0].get("price")
        Plan._api_retrieve(price)
        super().__init__()
        self.mode = mode
        self.customer = customer
        self.client_reference_id = client_reference_id
        self.metadata = metadata or {}
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.status = "open"
        self.payment_status = "unpaid"
        self.subscription = None
        self._price = price
        self.url = "%s/_checkout/%s" % (base, self.id)


class PortalSession(StripeObject):
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, base, customer=None, return_url=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        if type(customer) is not str or type(return_url) is not str:
            raise UserError(400, "Bad request")
        Customer._api_retrieve(customer)
        super().__init__()
        self.customer = customer
        self.return_url = return_url
        self.url = "%s/_portal/%s" % (base, self.id)


def add_checkout_and_portal(app, base):
    async def create_checkout(request):
        data = await server.get_post_data(request) or {}
        return server.json_response(CheckoutSession(base, **data)._export())

    async def create_portal(request):
        data = await server.get_post_data(request) or {}
        return server.json_response(PortalSession(base, **data)._export())

    async def pay(request):
        session = CheckoutSession._api_retrieve(request.match_info["id"])
        if session.status != "open":
            raise UserError(400, "The session is not open")
        card = PaymentMethod._api_attach("pm_card_visa", customer=session.customer)
        customer = Customer._api_retrieve(session.customer)
        customer.invoice_settings = dict(customer.invoice_settings or {},
                                         default_payment_method=card.id)
        sub = Subscription(customer=session.customer,
                           items=[{"plan": session._price}])
        session.status = "complete"
        session.payment_status = "paid"
        session.subscription = sub.id
        schedule_webhook(Event("checkout.session.completed", session))
        return server.json_response(session._export())

    app.router.add_post("/v1/checkout/sessions", create_checkout)
    app.router.add_post("/v1/billing_portal/sessions", create_portal)
    app.router.add_post("/_config/checkout/{id}/pay", pay)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args()

    def load(store):
        try:
            with open(args.state, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump(store):
        with open(args.state, "wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()

    add_checkout_and_portal(server.app, "http://127.0.0.1:%d" % args.port)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(server.app, sock=sock, print=None)


if __name__ == "__main__":
    main()
