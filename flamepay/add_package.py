"""An admin adds a package: a fixed amount the payer pays through one gateway.

Amounts above PACKAGE_MAX need an explicit confirmation (a typo like 100000 for 1000.00 is
the mistake this catches); the answer always carries the parsed amount so the admin sees
what FlamePay understood.
"""

from __future__ import annotations

import attrs

from flamepay.admin import require_admin
from flamepay.catalogue import Package, parse_title, parse_way_code
from flamepay.context import Core
from flamepay.errors import NotFound, Refused
from flamepay.money import parse_amount
from flamepay.ports import UnitOfWork


@attrs.frozen
class PackageDraft:
    amount: int  # what was parsed, echoed to the admin
    package: Package | None  # None when it waits for confirmation
    needs_confirmation: bool = False


def add_package(
    core: Core,
    admin_id: int,
    way_code: str,
    label: str,
    amount_text: str,
    sort_order: int = 0,
    confirmed: bool = False,
) -> PackageDraft:
    require_admin(core, admin_id, "package_add", way_code)
    code = parse_way_code(way_code)
    clean_label = parse_title(label, what="label")
    amount = parse_amount(amount_text)
    if not -1000 <= sort_order <= 1000:
        raise Refused("Expected a sort order from -1000 to 1000.")
    if amount > core.policy.package_max and not confirmed:
        return PackageDraft(amount, None, needs_confirmation=True)

    def body(uow: UnitOfWork) -> PackageDraft:
        if uow.catalogue.gateway(code) is None:
            raise NotFound(f"No gateway {code}; add it first with /gateway {code} <title> on.")
        package = uow.catalogue.add_package(Package(0, code, clean_label, amount, sort_order))
        core.audit(
            uow,
            f"admin:{admin_id}",
            "package_added",
            f"package:{package.id}",
            way_code=code,
            label=clean_label,
            amount=amount,
            confirmed=confirmed,
        )
        return PackageDraft(amount, package)

    return core.transaction(body)
