"""An admin switches a package off (or on again). Open orders for it are not touched."""

from __future__ import annotations

from flamepay.admin import require_admin
from flamepay.catalogue import Package
from flamepay.context import Core
from flamepay.errors import NotFound
from flamepay.ports import UnitOfWork


def switch_package(core: Core, admin_id: int, package_id: int, enabled: bool) -> Package:
    require_admin(
        core, admin_id, "package_off" if not enabled else "package_on", f"package:{package_id}"
    )

    def body(uow: UnitOfWork) -> Package:
        package = uow.catalogue.package(package_id)
        if package is None:
            raise NotFound(f"No package {package_id}. /packages lists them.")
        package.enabled = enabled
        uow.catalogue.save_package(package)
        core.audit(
            uow, f"admin:{admin_id}", "package_switched", f"package:{package_id}", enabled=enabled
        )
        return package

    return core.transaction(body)
