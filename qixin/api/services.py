"""What the HTTP API needs from the platform — and nothing more.

``app.build`` makes a ``Services`` with every collaborator, workers included; the API is typed against
this narrower protocol (mypy keeps it honest): the use cases, the caches and lookups that
authentication reads, and the channel view for staff. The dispatcher, router, uplink, webhook and billing
workers are not reachable from a route.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from qixin.gateway.manager import ChannelManager
    from qixin.services.accept import AcceptService
    from qixin.services.accounts import Accounts, Directory, Signatures, Templates
    from qixin.services.billing_desk import BillingDesk
    from qixin.services.compliance.service import ComplianceService
    from qixin.services.flashtests import FlashTests
    from qixin.services.metrics import Metrics
    from qixin.services.nonces import NonceStore
    from qixin.services.numbercheck import NumberChecks
    from qixin.services.numbercheck_jobs import NumberCheckJobs
    from qixin.services.queries import MessageSearch, Queries
    from qixin.services.staff import StaffDirectory, StaffUsers
    from qixin.services.stats import Statistics
    from qixin.services.tokens import RecipientTokens
    from qixin.settings import Settings
    from qixin.store.db import Database


class ApiServices(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def directory(self) -> Directory: ...
    @property
    def staff(self) -> StaffDirectory: ...
    @property
    def nonces(self) -> NonceStore: ...
    @property
    def compliance(self) -> ComplianceService: ...
    @property
    def accept(self) -> AcceptService: ...
    @property
    def channels(self) -> ChannelManager: ...
    @property
    def accounts(self) -> Accounts: ...
    @property
    def signatures(self) -> Signatures: ...
    @property
    def templates(self) -> Templates: ...
    @property
    def staff_users(self) -> StaffUsers: ...
    @property
    def queries(self) -> Queries: ...
    @property
    def billing(self) -> BillingDesk: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def message_search(self) -> MessageSearch: ...
    @property
    def statistics(self) -> Statistics: ...
    @property
    def numbers(self) -> NumberChecks: ...
    @property
    def tokens(self) -> RecipientTokens: ...
    @property
    def flash_tests(self) -> FlashTests: ...
    @property
    def numcheck_jobs(self) -> NumberCheckJobs: ...
    @property
    def log(self) -> logging.Logger: ...

    def invalidate(self) -> None: ...
    def health(self) -> dict[str, Any]: ...
